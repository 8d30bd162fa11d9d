"""Bad moments during training: Ctrl-C at every phase of a step, and a full disk while a checkpoint is written.

A real SIGINT is delivered (``os.kill``) from a hook at one phase of one step;
training stops at the next batch boundary, and the run resumed from its
checkpoint ends bit for bit where the uninterrupted run ends.
"""

from __future__ import annotations

import errno
import os
import signal
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch
from safetensors.torch import load_file

from cnnkit.cli import main
from cnnkit.training import Callback, TrainState, resume, train
from tests.conftest import DIGITS_CLASSES

pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn (pip install cnnkit[data])")

STEP = 9  # the global step (0-based) at which the interrupt arrives: mid-way through the first epoch of 12 batches


def _options(table: Path, out: Path) -> dict[str, Any]:
    return {"model": str(table), "data": "digits", "classes": [DIGITS_CLASSES], "epochs": 2, "batch_size": 64,
            "precision": "fp32", "seed": 5, "augment": ["noise"], "optimizer": "adam", "out": str(out)}


def _ctrl_c() -> None:
    os.kill(os.getpid(), signal.SIGINT)


class _Interrupter(Callback):
    """Installs a hook that sends SIGINT once, at global step :data:`STEP`, in the phase ``phase``."""

    def __init__(self, phase: str) -> None:
        self.phase, self.fired = phase, False

    def _once(self, state: TrainState) -> Callable[..., None]:
        def fire(*args: Any, **kwargs: Any) -> None:
            if not self.fired and state.global_step == STEP:
                self.fired = True
                _ctrl_c()
        return fire

    def on_fit_start(self, state: TrainState) -> None:
        self.fire = fire = self._once(state)
        first = next(m for m in state.model.modules() if isinstance(m, torch.nn.Conv2d))
        last = [m for m in state.model.modules() if isinstance(m, torch.nn.Linear)][-1]
        if self.phase == "forward":
            first.register_forward_hook(lambda module, inputs, output: fire())
        elif self.phase == "backward":
            last.register_full_backward_hook(lambda module, grad_in, grad_out: fire())
        elif self.phase == "optimizer update":
            state.optimizer.register_step_pre_hook(lambda optimizer, args, kwargs: fire())
        elif self.phase == "after the update":
            state.optimizer.register_step_post_hook(lambda optimizer, args, kwargs: fire())

    def on_batch_end(self, state: TrainState) -> None:
        if self.phase == "counters" and not self.fired and state.global_step == STEP + 1:
            self.fired = True
            _ctrl_c()


PHASES = ("forward", "backward", "optimizer update", "after the update", "schedule", "counters")


_BASELINES: dict[str, dict[str, torch.Tensor]] = {}


def _baseline(optimizer: str, tmp: Path) -> dict[str, torch.Tensor]:
    """The weights of the uninterrupted run with ``optimizer``, trained once per test session."""
    if optimizer not in _BASELINES:
        (tmp / "net.txt").write_text(_TABLE)
        result = train(quiet=True, **{**_options(tmp / "net.txt", tmp / optimizer), "optimizer": optimizer})
        _BASELINES[optimizer] = load_file(str(result.run_dir / "model.safetensors"))
    return _BASELINES[optimizer]


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory: pytest.TempPathFactory) -> dict[str, torch.Tensor]:
    return _baseline("adam", tmp_path_factory.mktemp("straight"))


_TABLE = "input 1x8x8\nconv 8 3x3 padding=same\nbatchnorm\nrelu\nmaxpool 2\nflatten\ndense 5\n"


@pytest.mark.parametrize(("phase", "optimizer"), [(phase, "adam") for phase in PHASES] + [
    ("optimizer update", "rmsprop"),  # RMSprop updates one parameter at a time in a Python loop: Ctrl-C lands inside it
    ("checkpoint write", "adam")])
def test_ctrl_c_at_any_phase_of_a_step_resumes_bit_for_bit(phase: str, optimizer: str, tmp_path: Path,
                                                           tmp_path_factory: pytest.TempPathFactory,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    expected = _baseline(optimizer, tmp_path_factory.mktemp(f"straight-{optimizer}"))
    (tmp_path / "net.txt").write_text(_TABLE)
    interrupter = _Interrupter(phase)
    if phase == "schedule":  # the class's step, not the instance's: a checkpoint pickles the instance
        step = torch.optim.lr_scheduler.LambdaLR.step

        def scheduled(scheduler: Any, *args: Any, **kwargs: Any) -> None:
            if hasattr(interrupter, "fire"):
                interrupter.fire()
            step(scheduler, *args, **kwargs)

        monkeypatch.setattr(torch.optim.lr_scheduler.LambdaLR, "step", scheduled)
    if phase == "checkpoint write":  # Ctrl-C while epoch 1's checkpoint is being written
        from cnnkit import runs

        write = runs.atomic_write

        def writing(path: Path, data: bytes) -> None:
            if path.name == "state.pt" and not interrupter.fired:
                interrupter.fired = True
                _ctrl_c()
            write(path, data)

        monkeypatch.setattr(runs, "atomic_write", writing)
    stopped = train(quiet=True, callbacks=[interrupter],
                    **{**_options(tmp_path / "net.txt", tmp_path / "run"), "optimizer": optimizer})
    assert interrupter.fired and stopped.stop_reason == "interrupted"
    checkpoint = torch.load(tmp_path / "run" / "checkpoint" / "state.pt", weights_only=True)
    done = 12 if phase == "checkpoint write" else STEP + 1  # stopped at the boundary after the step (or the epoch)
    assert checkpoint["epoch"] * 12 + checkpoint["batch"] == done == checkpoint["scheduler"]["last_epoch"]
    assert {int(s["step"]) for s in checkpoint["optimizer"]["state"].values()} == {done}
    monkeypatch.undo()
    resumed = resume(tmp_path / "run", quiet=True)
    assert resumed.stop_reason == ""
    weights = load_file(str(tmp_path / "run" / "model.safetensors"))
    for key, value in expected.items():
        assert torch.equal(weights[key], value), (phase, key)


def test_a_second_ctrl_c_stops_at_once_and_keeps_the_last_whole_checkpoint(tmp_path: Path) -> None:
    (tmp_path / "net.txt").write_text(_TABLE)

    class Twice(_Interrupter):
        def on_fit_start(self, state: TrainState) -> None:
            def fire(*args: Any) -> None:
                if state.global_step == 12 + 3 and not self.fired:  # epoch 2, after epoch 1's checkpoint
                    self.fired = True
                    _ctrl_c()
                    _ctrl_c()  # the second one raises inside the optimizer update

            state.optimizer.register_step_pre_hook(lambda optimizer, args, kwargs: fire())

    stopped = train(quiet=True, callbacks=[Twice("")], **_options(tmp_path / "net.txt", tmp_path / "run"))
    assert stopped.stop_reason == "interrupted"
    checkpoint = torch.load(tmp_path / "run" / "checkpoint" / "state.pt", weights_only=True)
    assert (checkpoint["epoch"], checkpoint["batch"]) == (1, 0)  # the torn state was not saved


def test_a_full_disk_keeps_the_last_checkpoint_and_says_so_in_one_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]) -> None:
    from cnnkit import fileio

    (tmp_path / "net.txt").write_text(_TABLE)
    out = tmp_path / "run"
    real = os.fdopen
    calls = {"checkpoints": 0}

    class FullDisk:
        """A file whose writes fail as on a full disk."""

        def __init__(self, file: Any) -> None:
            self.file = file

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

        def write(self, data: bytes) -> int:
            raise OSError(errno.ENOSPC, "No space left on device")

    def full_disk(handle: int, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        file = real(handle, mode, *args, **kwargs)
        if "state.pt" in os.readlink(f"/proc/self/fd/{handle}"):
            calls["checkpoints"] += 1
            if calls["checkpoints"] == 2:  # the checkpoint of epoch 2: epoch 1's is on disk
                return FullDisk(file)
        return file

    monkeypatch.setattr(fileio.os, "fdopen", full_disk)  # os itself: atomic_write opens its files with os.fdopen
    code = main(["train", "--model", str(tmp_path / "net.txt"), "--data", "digits", "--classes", DIGITS_CLASSES,
                 "--epochs", "3", "--batch-size", "64", "--precision", "fp32", "--out", str(out), "--no-report"])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1, err
    assert "cannot write the checkpoint at epoch 2" in err and "No space left on device" in err
    assert f"the checkpoint after epoch 1 is intact: free space and continue with `cnnkit train --resume {out}`" in err
    assert not list((out / "checkpoint").glob(".*.tmp"))  # the partial file is gone
    monkeypatch.undo()
    checkpoint = torch.load(out / "checkpoint" / "state.pt", weights_only=True)
    assert (checkpoint["epoch"], checkpoint["batch"]) == (1, 0)
    assert resume(out, quiet=True).history[-1]["epoch"] == 3


@pytest.mark.parametrize("tear", ["schedule ahead", "a parameter ahead", "batch past the epoch"])
def test_a_torn_checkpoint_is_refused_on_resume(tear: str, tmp_path: Path) -> None:
    (tmp_path / "net.txt").write_text(_TABLE)
    out = tmp_path / "run"
    train(quiet=True, callbacks=[_Interrupter("counters")], **_options(tmp_path / "net.txt", out))
    path = out / "checkpoint" / "state.pt"
    state = torch.load(path, weights_only=True)
    if tear == "schedule ahead":  # interrupted after the optimizer step, before the counters moved
        state["batch"] -= 1
        state["scheduler"]["last_epoch"] = state["batch"] + 1
        message = "the schedule has taken 10 steps but 9 batches are complete"
    elif tear == "a parameter ahead":  # interrupted inside a multi-tensor Adam update
        first = next(iter(state["optimizer"]["state"].values()))
        first["step"] = first["step"] + 1
        message = "a parameter has taken 11 optimizer steps but 10 batches are complete"
    else:
        state["batch"] = 99
        message = "batch 99 is not within an epoch of 12 batches"
    torch.save(state, path)
    with pytest.raises(ValueError, match=rf"state.pt: .*{message}"):
        resume(out, quiet=True)


@pytest.mark.parametrize("name", ["metrics.jsonl", "model.safetensors", "state.pt"])
def test_a_full_disk_at_any_file_of_a_checkpoint_resumes_bit_for_bit(
        name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, uninterrupted: dict[str, torch.Tensor]) -> None:
    from cnnkit import fileio

    (tmp_path / "net.txt").write_text(_TABLE)
    out = tmp_path / "run"
    real, seen = fileio.atomic_write, {"writes": 0}

    def full_disk(path: Path, data: bytes) -> None:
        if path.name == name:
            seen["writes"] += 1
            if seen["writes"] == 2:  # epoch 2's: epoch 1's checkpoint is whole on disk
                raise OSError(errno.ENOSPC, "No space left on device")
        real(path, data)

    monkeypatch.setattr("cnnkit.runs.atomic_write", full_disk)
    with pytest.raises(OSError, match=r"cannot write the checkpoint at epoch 2, batch 0 \(No space left on device\); "
                                      r"the checkpoint after epoch 1 is intact") as raised:
        train(quiet=True, **_options(tmp_path / "net.txt", out))
    assert raised.value.errno == errno.ENOSPC
    monkeypatch.undo()
    assert torch.load(out / "checkpoint" / "state.pt", weights_only=True)["epoch"] == 1
    resume(out, quiet=True)
    weights = load_file(str(out / "model.safetensors"))
    for key, value in uninterrupted.items():
        assert torch.equal(weights[key], value), (name, key)
