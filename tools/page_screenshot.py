"""The screenshots of exported pages kept in docs/.

    python tools/page_screenshot.py [--model gpt2] [-o docs/images/export-page.png]
    python tools/page_screenshot.py --app sentence-similarity [-o docs/images/minilm-page.png]

The first: a zoo model exported, run on both backends, tuned. The second: the pretrained MiniLM's
sentence-similarity page (`python -m nnjit.models.minilm --export`) after comparing its example
sentences on WebGPU and twice on Wasm (the first run of a backend includes its warm-up).
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import nnjit
from nnjit.models.zoo import example_inputs, zoo_path
from nnjit.runtime.chromium import ChromiumBrowser
from nnjit.runtime.serve import SiteServer


def model_page(model: str, output: Path) -> None:
    inputs = example_inputs(model, 1, 16)
    with tempfile.TemporaryDirectory() as folder:
        site = nnjit.export(zoo_path(model), folder, {k: v.shape for k, v in inputs.items()}, inputs=inputs,
                            title=f"{model} (zoo, random weights)", kernel_db=False)  # fmt: skip
        browser = ChromiumBrowser()
        try:
            page = browser.open(site)
            page.page.set_viewport_size({"width": 1100, "height": 900})
            page.tune("webgpu", 5.0)
            page.run("wasm", None, repeats=20)
            page.run("webgpu", None, repeats=10)
            page.screenshot(output)
        finally:
            browser.close()


def similarity_page(output: Path) -> None:
    from nnjit.models.minilm import export_similarity_site

    with tempfile.TemporaryDirectory() as folder:
        site = export_similarity_site(Path(folder) / "site", candidates=1, kernel_db=False)
        browser = ChromiumBrowser()
        try:
            with SiteServer({"/": site}) as server:
                page = browser.open_url(server.url, ready="() => document.body.dataset.state !== 'loading'")
                page.page.set_viewport_size({"width": 1100, "height": 900})
                for backend in ("webgpu", "wasm", "wasm"):
                    page.page.select_option("#backend", backend)
                    page.page.click("#compare")
                    page.page.wait_for_function("() => document.body.dataset.state !== 'running'")
                    page.check()
                    if page.evaluate("() => document.body.dataset.state") != "done":
                        raise SystemExit(page.evaluate("() => document.getElementById('status').textContent"))
                page.screenshot(output)
        finally:
            browser.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--app", choices=["model", "sentence-similarity"], default="model", help="which page")
    parser.add_argument("--model", default="gpt2", help="the zoo model of the generic page")
    parser.add_argument("-o", "--output", type=Path, help="default: docs/images/export-page.png or minilm-page.png")
    args = parser.parse_args()
    if args.app == "model":
        output = args.output or Path("docs/images/export-page.png")
        model_page(args.model, output)
    else:
        output = args.output or Path("docs/images/minilm-page.png")
        similarity_page(output)
    print(f"wrote {output}")


if __name__ == "__main__":
    main()
