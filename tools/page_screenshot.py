"""The screenshot of the exported page kept in docs/: a zoo model exported, run on both backends, tuned.

python tools/page_screenshot.py [--model gpt2] [-o docs/images/export-page.png]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import nnjit
from nnjit.models.zoo import example_inputs, zoo_path
from nnjit.runtime.chromium import ChromiumBrowser


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="gpt2")
    parser.add_argument("-o", "--output", type=Path, default=Path("docs/images/export-page.png"))
    args = parser.parse_args()
    inputs = example_inputs(args.model, 1, 16)
    with tempfile.TemporaryDirectory() as folder:
        site = nnjit.export(zoo_path(args.model), folder, {k: v.shape for k, v in inputs.items()}, inputs=inputs,
                            title=f"{args.model} (zoo, random weights)", kernel_db=False)  # fmt: skip
        browser = ChromiumBrowser()
        try:
            page = browser.open(site)
            page.page.set_viewport_size({"width": 1100, "height": 900})
            page.tune("webgpu", 5.0)
            page.run("wasm", None, repeats=20)
            page.run("webgpu", None, repeats=10)
            page.screenshot(args.output)
        finally:
            browser.close()
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
