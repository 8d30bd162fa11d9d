"""Shared fixtures: a small network for the 8x8 digits, and one trained run that every test that only reads a run shares.

The run is ``cnnkit train`` as a user types it (so it also writes the
evaluation and the report), on the digits 5-9 (``--classes``: the run's
classes are not the dataset's, which is what a reader of the run must keep).
Tests that change a run copy it first (``shutil.copytree``).
"""

from __future__ import annotations

import atexit
import io
import json
import os
import shutil
import tempfile
from contextlib import redirect_stdout
from pathlib import Path
from typing import Any, NamedTuple

import pytest

# tests read a run's figures right after `cnnkit train`: draw them before it returns (tests/report/
# test_background.py covers the default, a background process)
os.environ["CNNKIT_WAIT"] = "1"
# decompressed dataset files go to this session's own cache, not the user's ~/.cache
os.environ["CNNKIT_CACHE"] = tempfile.mkdtemp(prefix="cnnkit-test-cache-")
atexit.register(shutil.rmtree, os.environ["CNNKIT_CACHE"], ignore_errors=True)

# conv, BatchNorm, pooling and a dense head: every kind of layer export, the report and the readers handle
DIGITS_NET = """\
input 1x8x8
conv 8 3x3 padding=same
batchnorm
relu
conv 16 3x3 padding=same
relu
maxpool 2
flatten
dense 5
"""
DIGITS_CLASSES = "5-9"


class TrainedRun(NamedTuple):
    folder: Path  # the run directory
    output: dict[str, Any]  # what `cnnkit train --json` printed


@pytest.fixture
def digits_net(tmp_path: Path) -> Path:
    """The small digits network as a layer-table file."""
    path = tmp_path / "digits_net.txt"
    path.write_text(DIGITS_NET)
    return path


@pytest.fixture(scope="session")
def digits_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """``cnnkit train`` of :data:`DIGITS_NET` on the digits 5-9, two epochs: trained, evaluated, reported."""
    pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn (pip install cnnkit[data])")
    from cnnkit.cli import main

    folder = tmp_path_factory.mktemp("digits-run")
    table = folder / "digits_net.txt"
    table.write_text(DIGITS_NET)
    out = folder / "run"
    capture = io.StringIO()
    with redirect_stdout(capture):
        assert main(["train", "--model", str(table), "--data", "digits", "--classes", DIGITS_CLASSES, "--epochs", "2",
                     "--out", str(out), "--precision", "fp32", "--batch-size", "64", "--json"]) == 0
    return TrainedRun(out, json.loads(capture.getvalue()))


def _train_on_coco(folder: Path, task: str, scenes: int, epochs: int) -> TrainedRun:
    """``cnnkit train --task TASK`` on ``scenes`` shapes-det scenes of 32x32 written into ``folder/coco`` as a COCO
    folder (train and test splits, masks as RLE): trained, evaluated (``detections.json``), reported."""
    from cnnkit.cli import main
    from cnnkit.data import load
    from cnnkit.data.coco import save_coco

    save_coco(load("shapes-det", num_samples=scenes, image_size=32), folder / "coco")
    out = folder / "run"
    capture = io.StringIO()
    with redirect_stdout(capture):
        assert main(["train", "--task", task, "--data", f"coco:{folder / 'coco'}", "--image-size", "32",
                     "--epochs", str(epochs), "--out", str(out), "--precision", "fp32", "--json"]) == 0
    return TrainedRun(out, json.loads(capture.getvalue()))


@pytest.fixture(scope="session")
def detect_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """``--task detect`` on 800 scenes written as a COCO folder, four epochs (:func:`_train_on_coco`)."""
    return _train_on_coco(tmp_path_factory.mktemp("detect-run"), "detect", 800, 4)


@pytest.fixture(scope="session")
def localize_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """``cnnkit train --task localize`` (its defaults: fastnet, shapes-loc) at 32x32, three epochs."""
    from cnnkit.cli import main

    out = tmp_path_factory.mktemp("localize-run") / "run"
    capture = io.StringIO()
    with redirect_stdout(capture):
        assert main(["train", "--task", "localize", "--image-size", "32", "--epochs", "3", "--out", str(out),
                     "--precision", "fp32", "--json"]) == 0
    return TrainedRun(out, json.loads(capture.getvalue()))


@pytest.fixture(scope="session")
def instance_run(tmp_path_factory: pytest.TempPathFactory) -> TrainedRun:
    """``--task instance`` on 600 scenes written as a COCO folder, three epochs (:func:`_train_on_coco`)."""
    return _train_on_coco(tmp_path_factory.mktemp("instance-run"), "instance", 600, 3)
