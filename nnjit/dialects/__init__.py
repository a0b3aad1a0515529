"""nnjit's own xDSL dialects, one a file: `nn` (tensor level) and, later, `web` (kernel level)."""
