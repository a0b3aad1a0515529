"""nnjit.frontend.ops."""
