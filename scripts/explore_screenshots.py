"""Draw the explorer screenshots of the docs: a Fashion-MNIST run on one of its held-out images, and the pretrained
EfficientNet-Lite0 on scikit-image's cat (chelsea), each with one unit of the first convolution worked.

    .venv/bin/python scripts/explore_screenshots.py RUN_DIR [--out docs]

Needs Debian's chromium and playwright (``bash scripts/setup.sh all``).
"""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from cnnkit.explore.app import serve_in_thread
from cnnkit.explore.session import Explorer


def shoot(explorer: Explorer, browser: object, out: Path, image_title: str | None, layer: str,
          at: tuple[float, float]) -> None:
    url, server = serve_in_thread(explorer)
    page = browser.new_page(viewport={"width": 1280, "height": 800})  # type: ignore[attr-defined]
    page.goto(url)
    page.wait_for_selector("body[data-ready]", timeout=60_000)
    page.select_option("#per", "4")  # four maps a layer: the worked unit below them stays in the picture
    page.wait_for_timeout(1500)
    if image_title is not None:
        page.evaluate("delete document.body.dataset.ready")
        page.locator(f'#gallery button[title="{image_title}"]').click()
        page.wait_for_selector("body[data-ready]", timeout=60_000)
    page.wait_for_timeout(1500)  # the attribution overlay and the later columns
    tile = page.locator(f'.col[data-layer="{layer}"] img').nth(1)
    box = tile.bounding_box()
    tile.click(position={"x": at[0] * box["width"], "y": at[1] * box["height"]})
    page.wait_for_selector("#unit-total")
    page.screenshot(path=str(out), full_page=True)
    page.close()
    server.should_exit = True
    print(f"wrote {out}")


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", help="a Fashion-MNIST run directory (cnnkit train --data fashion-mnist)")
    parser.add_argument("--out", default="docs")
    args = parser.parse_args()
    out = Path(args.out)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        fashion = Explorer.open(args.run)
        first_conv = next(c["id"] for c in fashion.layers()["layers"] if c["type"] == "Conv2d")
        shoot(fashion, browser, out / "explore-fashion.png", None, first_conv, (0.5, 0.45))
        cat = Explorer.open("efficientnet_lite0", pretrained=True)
        shoot(cat, browser, out / "explore-cat.png", "chelsea.png", "_conv_stem", (0.45, 0.4))
        browser.close()


if __name__ == "__main__":
    main()
