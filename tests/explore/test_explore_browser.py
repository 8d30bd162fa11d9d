"""cnnkit explore in a real browser (Chromium through Playwright): pick an image, read the prediction, click a unit
of a feature map and check the worked total shown against PyTorch's activation there; the served page and the
static one alike. Skipped where Chromium or Playwright is missing (scripts/test.sh installs both as root)."""

from __future__ import annotations

import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from cnnkit.explore.session import Explorer
from cnnkit.runs import load_run
from tests.conftest import TrainedRun
from tests.explore.conftest import CHROMIUM

pytest.importorskip("playwright", reason="the browser tests need playwright (pip install pytest-playwright)")
pytest.importorskip("uvicorn", reason="cnnkit explore serves with uvicorn")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="needs Debian's chromium: `apt-get install chromium`")


@pytest.fixture(scope="module")
def served(digits_run: TrainedRun) -> Iterator[tuple[str, Explorer]]:
    """The digits run's explorer on a free port of 127.0.0.1, served by uvicorn in a thread."""
    from cnnkit.explore.app import serve_in_thread

    explorer = Explorer.open(digits_run.folder)
    url, server = serve_in_thread(explorer)
    yield url, explorer
    server.should_exit = True


def _activation(run: Path, x: torch.Tensor, layer: str, at: tuple[int, ...]) -> float:
    """PyTorch's value of ``layer`` at ``at`` for input ``x``, from the run's network loaded afresh."""
    network = load_run(run).network()
    taken: list[torch.Tensor] = []
    network.get_submodule(layer).register_forward_hook(lambda m, i, o: taken.append(o))
    with torch.no_grad():
        network(x)
    return float(taken[0][(0, *at)])


def _click_unit(page: Any, layer: str, position: tuple[float, float]) -> tuple[tuple[int, int, int], float, float]:
    """Click ``position`` (fractions of the width and height) of the first map of ``layer``: the unit it means, the
    total the page shows, and PyTorch's value the page shows."""
    tile = page.locator(f'.col[data-layer="{layer}"] img').first
    tile.wait_for()
    box = tile.bounding_box()
    channel = int(tile.get_attribute("data-channel"))
    page.evaluate("document.getElementById('unit-body').textContent = ''")  # no earlier unit's total is read
    tile.click(position={"x": position[0] * box["width"], "y": position[1] * box["height"]})
    page.wait_for_selector("#unit-total")
    at = (channel, int(position[1] * 8), int(position[0] * 8))  # the digits' maps are 8x8
    return at, float(page.get_attribute("#unit-total", "data-value")), float(page.get_attribute("#unit-pytorch",
                                                                                                 "data-value"))


def _not_blank(png: bytes) -> None:
    pixels = np.asarray(Image.open(io.BytesIO(png)).convert("L"), dtype=np.float64)
    assert pixels.std() > 20 and (pixels < 128).mean() > 0.02  # text, maps and bars, not an empty page


def test_the_served_page_predicts_and_works_a_clicked_unit(page: Any, served: tuple[str, Explorer],
                                                           digits_run: TrainedRun, tmp_path: Path) -> None:
    url, explorer = served
    page.goto(url)
    page.wait_for_selector("body[data-ready]", timeout=30_000)
    chosen = page.get_attribute("body", "data-ready")
    assert page.get_attribute("#predicted", "data-class") == explorer.predict(chosen)["predicted_name"]
    at, total, shown = _click_unit(page, "conv2", (0.4, 0.7))
    expected = _activation(digits_run.folder, explorer.pictures[chosen].x, "conv2", at)
    assert abs(total - expected) <= 1e-4 and abs(shown - expected) <= 1e-6
    assert page.evaluate("document.documentElement.scrollWidth") <= 1280  # no horizontal scrolling
    assert page.locator("#rf").is_visible()  # the unit's receptive field outlined on the input
    _not_blank(page.screenshot(full_page=True))

    # another image of the gallery, then a drawing: each predicted, as the API says
    page.locator("#gallery button").nth(3).click()
    page.wait_for_function(f"document.body.dataset.ready !== {chosen!r}")
    chosen = page.get_attribute("body", "data-ready")
    assert page.get_attribute("#predicted", "data-class") == explorer.predict(chosen)["predicted_name"]
    canvas = page.locator("#draw").bounding_box()
    page.mouse.move(canvas["x"] + 70, canvas["y"] + 20)
    page.mouse.down()
    page.mouse.move(canvas["x"] + 70, canvas["y"] + 120, steps=8)
    page.mouse.up()
    page.click("#draw-use")
    page.wait_for_function("(document.body.dataset.ready || '').startsWith('upload-')")
    drawn = page.get_attribute("body", "data-ready")
    assert page.get_attribute("#predicted", "data-class") == explorer.predict(drawn)["predicted_name"]
    at, total, _ = _click_unit(page, "conv1", (0.55, 0.5))
    assert abs(total - _activation(digits_run.folder, explorer.pictures[drawn].x, "conv1", at)) <= 1e-4


def test_the_static_page_works_offline(page: Any, digits_run: TrainedRun, tmp_path: Path) -> None:
    from cnnkit.cli import main
    from cnnkit.images import input_from_file

    run = load_run(digits_run.folder)
    held_out, _ = run.held_out()
    digit = tmp_path / "digit.png"
    Image.fromarray(held_out.images[5, 0].numpy()).save(digit)
    out = tmp_path / "page.html"
    assert main(["explore", str(digits_run.folder), "--static", str(out), "--image", str(digit)]) == 0
    page.route("**/*", lambda route: route.abort() if not route.request.url.startswith("file:") else route.continue_())
    page.goto(out.as_uri())
    page.wait_for_selector("body[data-ready]", timeout=30_000)
    x = input_from_file(digit, run.card.prep())[None]
    with torch.no_grad():
        predicted = int(run.network()(x).argmax())
    assert page.get_attribute("#predicted", "data-class") == run.card.class_names[predicted]
    at, total, _ = _click_unit(page, "conv1", (0.45, 0.35))  # conv, then batch norm and ReLU worked in the page
    assert abs(total - _activation(digits_run.folder, x, "conv1", at)) <= 1e-4
    final = float(page.get_attribute("#unit-pytorch", "data-final"))
    assert abs(final - _activation(digits_run.folder, x, "relu1", at)) <= 1e-6
    for layer, position in (("conv2", (0.3, 0.6)), ("maxpool1", (0.6, 0.2))):
        at, total, _ = _click_unit(page, layer, position)
        if layer == "maxpool1":
            at = (at[0], int(position[1] * 4), int(position[0] * 4))  # pooled to 4x4
            total = float(page.get_attribute("#unit-total", "data-value"))
        expected = _activation(digits_run.folder, x, layer, at)
        assert abs(total - expected) <= 1e-4, (layer, at)
    _not_blank(page.screenshot(full_page=True))
