"""``--recipe``: presets applied before the options given, test-time flip, per-epoch accuracy and time."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from cnnkit.cli import main
from cnnkit.data import BatchTransform
from cnnkit.evaluation import evaluate
from cnnkit.runtime import choose
from cnnkit.tasks.classify import evaluate_batches
from cnnkit.training import TrainConfig
from cnnkit.training.optim import make_optimizer
from cnnkit.training.recipes import RECIPES, recipe_options


def test_recipe_options_come_first_and_given_options_override_them() -> None:
    config = TrainConfig.from_dict({"recipe": "fast", "epochs": 2, "data": "digits"})
    fast = RECIPES["fast"]
    assert (config.model, config.batch_size, config.optimizer, config.lr) == (fast["model"], fast["batch_size"],
                                                                              fast["optimizer"], fast["lr"])
    assert config.epochs == 2 and config.data == "digits" and config.recipe == "fast"
    assert config.tta and config.channels_last
    # a copy: changing the result leaves the recipe alone
    recipe_options("fast")["augment"].append("noise")
    assert "noise" not in RECIPES["fast"]["augment"]
    # without a recipe nothing changes: the plain defaults
    assert TrainConfig.from_dict({}) == TrainConfig()


def test_unknown_recipe_is_one_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(ValueError, match=r"--recipe: unknown recipe 'fats'\. Did you mean 'fast'\? Known: fast"):
        TrainConfig.from_dict({"recipe": "fats"})
    assert main(["train", "--recipe", "slow"]) == 2
    assert "unknown recipe 'slow'" in capsys.readouterr().err


def test_test_time_flip_averages_the_two_views() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.Flatten(), torch.nn.LazyLinear(3))
    images = torch.randint(0, 256, (5, 1, 6, 6), dtype=torch.uint8)
    labels = torch.tensor([0, 1, 2, 0, 1])
    runtime, transform = choose("cpu", "fp32", False), BatchTransform()
    _, _, plain = evaluate_batches(model, images, labels, transform, runtime)
    _, _, mirrored = evaluate_batches(model, images.flip(-1), labels, transform, runtime)
    _, _, both = evaluate_batches(model, images, labels, transform, runtime, tta=True)
    torch.testing.assert_close(both, (plain + mirrored) / 2)


def test_fast_recipe_through_the_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The whole recipe on real data (8x8 digits, so it takes seconds): per-epoch accuracy and time, TTA in evaluate."""
    pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn")
    run = tmp_path / "fast"
    # digits are not mirror-symmetric, but the recipe's flips and TTA still have to run end to end
    assert main(["train", "--recipe", "fast", "--data", "digits", "--epochs", "2", "--batch-size", "64",
                 "--out", str(run), "--json", "--no-evaluate", "--no-report"]) == 0
    assert json.loads(capsys.readouterr().out)["history"][-1]["epoch"] == 2
    history = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in history] == [1, 2]
    for record in history:
        assert 0 < record["eval_time"] < record["time"] and record["images_per_second"] > 0
    assert history[-1]["test_accuracy"] > 0.3  # chance is 0.1; 46 steps of a 28x28 recipe on 8x8 digits reach ~0.5
    config = json.loads((run / "config.json").read_text())
    assert config["recipe"] == "fast" and config["model"] == "fastnet" and config["tta"] and config["epochs"] == 2
    # evaluate uses the run's TTA, so its accuracy is the one the last epoch recorded (bf16 there, fp32 here)
    assert evaluate(run, figures=False).accuracy == pytest.approx(history[-1]["test_accuracy"], abs=0.02)


def test_fast_defaults_layout_and_fused_optimizer() -> None:
    """bf16 runs default to channels-last (oneDNN's native layout) and optimizers to the fused step."""
    assert choose("cpu", "bf16", None).channels_last and choose("cpu", "fp32", None).channels_last  # measured faster
    assert not choose("cpu", "bf16", False).channels_last and choose("cpu", "fp32", True).channels_last
    model = torch.nn.Linear(3, 2)
    for name in ("sgd", "adam", "adamw", "adagrad"):
        optimizer = make_optimizer(model, TrainConfig.from_dict({"optimizer": name}))
        assert optimizer.defaults["fused"] is True, name


def test_auto_device_takes_cuda_then_mps_then_the_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The selection on machines this one is not: PyTorch's own availability checks replaced."""
    import cnnkit.runtime as runtime

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "mps_available", lambda: True)
    chosen = choose("auto")
    assert (chosen.device.type, chosen.precision, chosen.channels_last) == ("mps", "fp32", False)
    assert choose("mps", channels_last=True).channels_last  # asked for: given
    with pytest.raises(ValueError, match="--precision bf16 on --device mps"):
        choose("mps", "bf16")
    monkeypatch.setattr(runtime, "mps_available", lambda: False)
    assert choose("auto").device.type == "cpu"
    with pytest.raises(ValueError, match="--device mps: PyTorch reports no Apple-silicon GPU"):
        choose("mps")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: True)
    monkeypatch.setattr(runtime, "mps_available", lambda: True)
    assert choose("auto").device.type == "cuda"  # a CUDA GPU first


def test_a_cpu_capped_below_bf16_trains_in_fp32(monkeypatch: pytest.MonkeyPatch) -> None:
    """ONEDNN_MAX_CPU_ISA / ATEN_CPU_CAPABILITY below native bf16: bf16 would be emulated, so auto is fp32."""
    import cnnkit.runtime as runtime

    def has_bf16(env: dict[str, str]) -> bool:
        for name in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY"):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        runtime.cpu_has_bf16.cache_clear()
        try:
            return runtime.cpu_has_bf16()
        finally:
            runtime.cpu_has_bf16.cache_clear()

    native = has_bf16({})
    assert native == any(flag in Path("/proc/cpuinfo").read_text() for flag in ("avx512_bf16", "amx_bf16"))
    for env in ({"ONEDNN_MAX_CPU_ISA": "avx2"}, {"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_VNNI"},
                {"ATEN_CPU_CAPABILITY": "avx2"}, {"ATEN_CPU_CAPABILITY": "default"}):
        assert has_bf16(env) is False, env
    assert has_bf16({"ONEDNN_MAX_CPU_ISA": "AVX512_CORE_AMX", "ATEN_CPU_CAPABILITY": "avx512"}) == native
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    monkeypatch.setattr(runtime, "mps_available", lambda: False)
    assert choose("auto").precision == "fp32"
    runtime.cpu_has_bf16.cache_clear()
