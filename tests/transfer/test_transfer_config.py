"""TransferConfig and strategy names: parsed once, checked, and refused with the flag's name."""

from __future__ import annotations

import pytest

from cnnkit.transfer import Strategy, TransferConfig


def test_strategies_parse() -> None:
    assert Strategy.parse("extract") == Strategy("extract")
    assert Strategy.parse("freeze:12") == Strategy("freeze", blocks=12)
    assert Strategy.parse("freeze:layer3") == Strategy("freeze", layer="layer3")
    assert str(Strategy.parse(" finetune ")) == "finetune" and str(Strategy.parse("freeze:_blocks.9")) == "freeze:_blocks.9"


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"strategy": "unfreeze"}, r"--strategy must be extract, freeze:K \(K blocks frozen\), freeze:LAYER_NAME or finetune"),
        ({"strategy": "freeze:0"}, r"freeze:0 freezes nothing: use finetune"),
        ({"strategy": "finetune", "classifier": "svm"}, r"--classifier svm works on extracted features: it needs --strategy extract"),
        ({"strategy": "extract", "augment": ["flip"]}, r"--augment does not apply to --strategy extract"),
        ({"backbone_lr": 2.0}, r"--backbone-lr \(a fraction of --lr\) in \(0, 1\]"),
        ({"head_epochs": -1}, r"--head-epochs must be >= 0"),
        ({"strategy": "extract", "head_epochs": 0}, r"--strategy extract trains the dense head for --head-epochs"),
        ({"batchnorm": "eval"}, r"--batchnorm must be one of frozen, train. Received: 'eval'"),
        ({"stratgy": "extract"}, r"unknown transfer option 'stratgy'. Did you mean 'strategy'\?"),
        ({"strategy": "finetune", "features": "last"}, r"--features and --feature-grid choose what --strategy extract's "
                                                       r"classifier reads.*Received: --strategy finetune, --features last"),
        ({"strategy": "extract", "feature_grid": 0}, r"--feature-grid must be at least 1. Received: 0"),
        ({"strategy": "extract", "features": "last", "feature_grid": 1}, r"--features last reads the old classifier's "
                                                                        r"input as it is. Received: --feature-grid 1"),
        ({"strategy": "extract", "features": "blocks:x"}, r"--features blocks:N needs N >= 1"),
    ],
)
def test_bad_options_name_the_flag(values: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TransferConfig.from_dict(values)


def test_head_epochs_default_to_about_a_thousand_steps() -> None:
    config = TransferConfig(batch_size=32)
    assert config.head_epochs_for(1000) == 32  # 32 steps an epoch
    assert config.head_epochs_for(100) == 250  # 4 steps an epoch
    assert TransferConfig(head_epochs=7).head_epochs_for(100) == 7


def test_compare_settings_leave_strategy_checks_to_each_run() -> None:
    shared = {"features": "blocks:2", "classifier": "logistic", "augment": ["flip"]}
    assert TransferConfig.from_dict(shared, shared=True).features == "blocks:2"  # extract reads some, finetune others
    with pytest.raises(ValueError, match=r"--classifier logistic works on extracted features"):
        TransferConfig.from_dict(shared)
