"""report.html of a real (tiny) run: every section and image present, generic metrics, and a headless-browser render."""

from __future__ import annotations

import base64
import html
import io
import json
import re
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from cnnkit.cli import main
from cnnkit.data import load
from cnnkit.report import write_report
from tests.conftest import DIGITS_CLASSES, TrainedRun

pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn (pip install cnnkit[data])")

SECTIONS = ("configuration", "network", "curves", "metrics", "confusion", "mistakes", "filters", "feature-maps",
            "gradcam")
FIGURES = ("curves.png", "confusion_matrix.png", "mistakes.png", "filters.png", "feature_maps.png", "gradcam.png")
IMAGE = re.compile(r'<img src="data:image/png;base64,([A-Za-z0-9+/=]+)" alt="[^"]*" data-file="([^"]+)">')


@pytest.fixture(scope="module")
def run(digits_run: TrainedRun) -> tuple[Path, dict[str, object]]:
    """The shared run (tests/conftest.py): ``cnnkit train`` on the digits 5-9, which writes the report."""
    return digits_run.folder, digits_run.output


def _sections(page: str) -> dict[str, str]:
    return dict(re.findall(r'<section id="([^"]+)">(.*?)</section>', page, re.DOTALL))


def test_train_writes_a_self_contained_report(run: tuple[Path, dict[str, object]]) -> None:
    folder, output = run
    report = output["report"]
    assert isinstance(report, dict) and report["report"] == str(folder / "report.html")
    assert {Path(f).name for f in report["files"]} == {"report.html", "curves.png", "filters.png", "feature_maps.png",
                                                      "gradcam.png"}
    assert report["notes"] == []
    page = (folder / "report.html").read_text(encoding="utf-8")
    sections = _sections(page)
    assert list(sections) == list(SECTIONS)
    images = {name: base64.b64decode(data) for data, name in IMAGE.findall(page)}
    assert sorted(images) == sorted(FIGURES)
    for name, data in images.items():
        assert data == (folder / name).read_bytes(), name  # the very PNG of the run directory, embedded
        with Image.open(io.BytesIO(data)) as image:
            assert image.format == "PNG" and image.width > 300, name
    assert not re.search(r'(src|href)="(?!data:|#)', page)  # nothing outside the page: opens offline
    metrics = json.loads((folder / "metrics.json").read_text())
    assert f"{metrics['accuracy']:.4g}" in sections["metrics"] and "macro_avg f1" in sections["metrics"]
    assert "conv1" in sections["network"] and "Total params" in sections["network"]
    assert "digits" in sections["configuration"] and "onecycle" in sections["configuration"]
    # the image shown is the run's own held-out image #0, with its true class among the run's classes (5-9)
    test = load("digits", classes=[DIGITS_CLASSES]).test
    assert test is not None
    shown = html.escape(f"test image #0, true class {test.class_names[int(test.labels[0])]!r}")
    assert shown in sections["feature-maps"]
    assert not list(folder.glob(".*.tmp"))


def test_report_shows_any_task_metrics_and_survives_missing_parts(run: tuple[Path, dict[str, object]],
                                                                  tmp_path: Path) -> None:
    # another task's evaluation: other scalars, another figure, no confusion matrix
    folder = tmp_path / "other"
    shutil.copytree(run[0], folder)
    iou = folder / "iou_per_class.png"
    Image.fromarray(np.full((40, 60, 3), 200, np.uint8)).save(iou)
    (folder / "confusion_matrix.png").unlink()
    (folder / "mistakes.png").unlink()
    (folder / "metrics.json").write_text(json.dumps({
        "split": "test", "count": 12, "mean_iou": 0.6125, "psnr": 23.5, "per_class_iou": {"background": 0.9},
        "files": {"iou_figure": str(iou), "confusion_matrix": "/elsewhere/confusion_matrix.png"}}))
    (folder / "metrics.jsonl").unlink()
    report = write_report(folder)
    sections = _sections(report.path.read_text(encoding="utf-8"))
    for text in ("mean_iou", "0.6125", "psnr", "23.5", "per_class_iou background"):
        assert text in sections["metrics"], text
    assert 'data-file="iou_per_class.png"' in sections["more-figures"]
    assert "missing" in sections["confusion"] and "no mistakes" in sections["mistakes"]
    assert 'data-file="gradcam.png"' in sections["gradcam"] and "true class" in sections["feature-maps"]
    # not evaluated, and the weights gone: every section still there, saying why it is empty
    (folder / "metrics.json").unlink()
    (folder / "model.safetensors").unlink()
    report = write_report(folder)
    sections = _sections(report.path.read_text(encoding="utf-8"))
    assert list(sections) == list(SECTIONS)
    assert "not evaluated yet: run `cnnkit evaluate" in sections["metrics"] and "no curves" in sections["curves"]
    assert all("model.safetensors: no such weight file" in sections[s] for s in ("filters", "feature-maps", "gradcam"))
    assert set(report.figures) == set() and len(report.notes) == 2


def test_evaluate_refreshes_the_report(run: tuple[Path, dict[str, object]], tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    folder = tmp_path / "again"
    shutil.copytree(run[0], folder)
    (folder / "report.html").unlink()
    assert main(["evaluate", str(folder), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["report"] == str(folder / "report.html")
    assert (folder / "report.html").is_file()
    assert main(["report", str(folder / "nothing")]) == 2
    assert "not a run directory" in capsys.readouterr().err
    assert main(["report", str(folder), "--sample", "5000"]) == 2
    test = load("digits", classes=[DIGITS_CLASSES]).test
    assert test is not None
    assert (f"--sample must be an index from 0 to {len(test) - 1} of the test split. Received: 5000"
            in capsys.readouterr().err)


CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"]
# appended to a copy of the page: after the load event, record how each image decoded, into the DOM
PROBE = """<script>window.addEventListener("load", () => {
  const rows = Array.from(document.images, (img) => [img.dataset.file || img.id, img.complete, img.naturalWidth]);
  const headings = Array.from(document.querySelectorAll("section"), (s) => [s.id, s.querySelector("h2").innerText,
    s.getBoundingClientRect().height]);
  const out = document.createElement("pre"); out.id = "probe";
  out.textContent = JSON.stringify({images: rows, sections: headings}); document.body.appendChild(out);
});</script>"""
BROKEN = '<img id="broken-control" src="data:image/png;base64,iVBORw0KGgoAAAANSUhEUg==">'


def _chromium(*args: str) -> subprocess.CompletedProcess[str]:
    assert CHROMIUM is not None
    with tempfile.TemporaryDirectory(prefix="cnnkit-chromium-") as profile:
        return subprocess.run([CHROMIUM, *FLAGS, f"--user-data-dir={profile}", *args], capture_output=True,
                              text=True, timeout=120, check=False)


@pytest.mark.skipif(CHROMIUM is None, reason="headless rendering needs Debian's chromium: `apt-get install chromium` "
                                             "(scripts/test.sh installs it when run as root)")
def test_report_renders_in_headless_chromium(run: tuple[Path, dict[str, object]], tmp_path: Path) -> None:
    page = (run[0] / "report.html").read_text(encoding="utf-8")
    probed = tmp_path / "probed.html"
    # the control image is broken on purpose: the probe must tell a broken image from a decoded one
    probed.write_text(page.replace("</body>", f"{BROKEN}{PROBE}</body>"), encoding="utf-8")
    dom = _chromium("--virtual-time-budget=10000", "--dump-dom", probed.as_uri())
    found = re.search(r'<pre id="probe">(.*?)</pre>', dom.stdout, re.DOTALL)
    assert found, dom.stderr[-2000:]
    probe = json.loads(found.group(1).replace("&quot;", '"').replace("&amp;", "&"))
    images = {name: (complete, width) for name, complete, width in probe["images"]}
    assert images.pop("broken-control") == (True, 0)
    assert sorted(images) == sorted(FIGURES)
    for name, (complete, width) in images.items():
        assert complete and width > 300, (name, width)  # decoded at its real size
    assert [s[0] for s in probe["sections"]] == list(SECTIONS)
    assert all(height > 50 for _, _, height in probe["sections"]), probe["sections"]  # laid out, not collapsed
    shot = tmp_path / "report.png"
    _chromium("--hide-scrollbars", "--window-size=1280,4000", f"--screenshot={shot}", (run[0] / "report.html").as_uri())
    with Image.open(shot) as image:
        pixels = np.asarray(image.convert("L"))
    assert pixels.shape == (4000, 1280) and pixels.std() > 20  # the page was painted, with content
