"""How live ``cnnkit explore`` feels: from choosing an image to the prediction and the first layers' maps on screen.

For each network a real server (uvicorn, 127.0.0.1) serves the explorer and
headless Chromium (Playwright) clicks each image of the gallery in turn; the
page itself reports the milliseconds from the click to the prediction and the
first six layer columns drawn (``ready (N ms)``). The same process also times
the plain PyTorch forward pass of the network on one image (the baseline), so
the ratio says what the explorer adds around it::

    python benchmarks/explore_latency.py [--models lenet5,fastnet,efficientnet_lite0] [--rounds 3]

The zoo's LeNet-5 and fastnet run with fresh weights (the time does not depend
on the weights); EfficientNet-Lite0 with its ImageNet weights at 224x224, on
scikit-image's photographs.
"""

from __future__ import annotations

import argparse
import re
import shutil
import statistics
import time

import common
import torch

from cnnkit.explore.app import serve_in_thread
from cnnkit.explore.session import Explorer

TARGETS = {"lenet5": 0.3, "fastnet": 0.3, "efficientnet_lite0": 2.0}  # seconds, the bar


def _forward_seconds(explorer: Explorer, repeats: int = 20) -> float:
    model, x = explorer.subject.model.eval(), next(iter(explorer.pictures.values())).x
    with torch.no_grad():
        model(x)
        start = time.perf_counter()
        for _ in range(repeats):
            model(x)
    return (time.perf_counter() - start) / repeats


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default="lenet5,fastnet,efficientnet_lite0")
    parser.add_argument("--rounds", type=int, default=3, help="times each image is chosen (the first round warms up)")
    common.add_common_arguments(parser)
    args = parser.parse_args()
    doc = common.apply_common_arguments(args)
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        raise SystemExit("needs Debian's chromium: apt-get install chromium")
    rows = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        for name in args.models.split(","):
            explorer = Explorer.open(name, pretrained=name == "efficientnet_lite0")
            url, server = serve_in_thread(explorer)
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(url)
            page.wait_for_selector("body[data-ready]", timeout=60_000)
            times = []
            buttons = page.locator("#gallery button")
            for round_ in range(args.rounds):
                for i in range(buttons.count()):
                    explorer._passes.clear()  # every choice computes its forward pass again, as a new image would
                    page.evaluate("delete document.body.dataset.ready")
                    buttons.nth(i).click()
                    page.wait_for_selector("body[data-ready]", timeout=60_000)
                    found = re.search(r"ready \((\d+) ms\)", page.inner_text("#status"))
                    if found and round_ > 0:
                        times.append(int(found.group(1)) / 1000)
            page.close()
            server.should_exit = True
            forward = _forward_seconds(explorer)
            median = statistics.median(times)
            rows.append({"model": name, "input": list(explorer.subject.prep.input_shape), "choices": len(times),
                         "median_seconds": round(median, 3), "max_seconds": round(max(times), 3),
                         "target_seconds": TARGETS.get(name), "plain_forward_seconds": round(forward, 4),
                         "ratio_to_forward": round(median / forward, 1)})
            print(rows[-1], flush=True)
        browser.close()
    headline = "; ".join(f"{r['model']} {r['median_seconds']:.2f} s to prediction + first maps (bar "
                         f"{r['target_seconds']} s; {r['ratio_to_forward']}x its forward pass)" for r in rows)
    common.record("explore_latency", headline, {"rows": rows}, doc)


if __name__ == "__main__":
    main()
