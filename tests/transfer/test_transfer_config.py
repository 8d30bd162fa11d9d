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
