"""cnnkit's optimizers are PyTorch's, less the compiler's wrappers (:func:`cnnkit.training.optim.eager`): every
step, every state and every checkpoint equals what the stock ``torch.optim`` class gives, bit for bit."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import torch
from torch import nn

from cnnkit.training import TrainConfig
from cnnkit.training.optim import SGD, Schedule, eager, make_optimizer, make_scheduler, parameter_groups

STOCK = {"sgd": torch.optim.SGD, "adagrad": torch.optim.Adagrad, "rmsprop": torch.optim.RMSprop,
         "adam": torch.optim.Adam, "adamw": torch.optim.AdamW}
CONFIGS = [TrainConfig(optimizer="sgd", momentum=0.9, nesterov=True, weight_decay=1e-3),
           TrainConfig(optimizer="sgd", momentum=0.0), TrainConfig(optimizer="adagrad"),
           TrainConfig(optimizer="rmsprop", momentum=0.5), TrainConfig(optimizer="adam", weight_decay=1e-2),
           TrainConfig(optimizer="adamw", weight_decay=5e-2)]


def _network() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Conv2d(1, 4, 3, bias=False), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.Linear(4 * 6 * 6, 3))


def _stock(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """What make_optimizer builds, with the stock torch.optim class."""
    groups = parameter_groups(model, config.weight_decay)
    kwargs: dict[str, Any] = {"lr": config.learning_rate}
    if config.optimizer == "sgd":
        kwargs.update(momentum=config.momentum, nesterov=config.nesterov)
    if config.optimizer == "rmsprop":
        kwargs.update(momentum=config.momentum)
    else:
        kwargs.update(fused=True)
    return STOCK[config.optimizer](groups, **kwargs)


def _train(model: nn.Module, optimizer: torch.optim.Optimizer, steps: int, seed: int) -> None:
    scheduler = make_scheduler(optimizer, Schedule("onecycle", 1), 8)
    data = torch.Generator().manual_seed(seed)
    for _ in range(steps):
        x, y = torch.randn(8, 1, 8, 8, generator=data), torch.randint(0, 3, (8,), generator=data)
        optimizer.zero_grad(set_to_none=True)
        nn.functional.cross_entropy(model(x), y).backward()
        optimizer.step()
        scheduler.step()


def _same_state(a: dict[str, Any], b: dict[str, Any]) -> bool:
    if a.keys() != b.keys():
        return False
    return all(_same_state(a[k], b[k]) if isinstance(a[k], dict) else
               torch.equal(a[k], b[k]) if isinstance(a[k], torch.Tensor) else a[k] == b[k] for k in a)


@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: f"{c.optimizer}-{c.momentum}-{c.weight_decay}")
def test_every_optimizer_steps_exactly_as_the_stock_one_and_shares_its_checkpoints(config: TrainConfig) -> None:
    ours_net, stock_net = _network(), _network()
    ours, stock = make_optimizer(ours_net, config), _stock(stock_net, config)
    assert isinstance(ours, STOCK[config.optimizer]) and type(ours) is not STOCK[config.optimizer]
    _train(ours_net, ours, 5, seed=1)
    _train(stock_net, stock, 5, seed=1)
    changed = [not torch.equal(p, q) for p, q in zip(ours_net.parameters(), _network().parameters(), strict=True)]
    assert all(changed)  # every parameter moved ...
    for p, q in zip(ours_net.parameters(), stock_net.parameters(), strict=True):
        assert torch.equal(p, q)  # ... to exactly where torch.optim moves it
    saved = ours.state_dict()
    assert _same_state(saved["state"], stock.state_dict()["state"])
    assert saved["param_groups"] == stock.state_dict()["param_groups"]
    # a checkpoint of the stock class resumes in ours and the other way round, and both go on alike
    ours_again, stock_again = copy.deepcopy(ours_net), copy.deepcopy(stock_net)
    resumed_ours, resumed_stock = make_optimizer(ours_again, config), _stock(stock_again, config)
    resumed_ours.load_state_dict(stock.state_dict())
    resumed_stock.load_state_dict(saved)
    data = torch.Generator().manual_seed(2)
    x, y = torch.randn(8, 1, 8, 8, generator=data), torch.randint(0, 3, (8,), generator=data)
    for net, optimizer in ((ours_again, resumed_ours), (stock_again, resumed_stock)):
        optimizer.zero_grad()
        nn.functional.cross_entropy(net(x), y).backward()
        optimizer.step()
    for p, q in zip(ours_again.parameters(), stock_again.parameters(), strict=True):
        assert torch.equal(p, q)


def test_a_step_takes_no_gradient_and_keeps_the_callers_grad_mode() -> None:
    net = _network()
    optimizer = SGD(net.parameters(), lr=0.1)
    net(torch.randn(2, 1, 8, 8)).sum().backward()
    with torch.enable_grad():
        optimizer.step()  # an in-place update of a leaf that requires grad raises unless the step disabled grad
        assert torch.is_grad_enabled()
    assert eager(torch.optim.SGD).__name__ == "SGD" and issubclass(eager(torch.optim.SGD), torch.optim.SGD)


def test_a_stock_optimizer_built_first_does_not_bring_the_wrappers_back(monkeypatch: pytest.MonkeyPatch) -> None:
    """torch wraps a class's step for the profiler when its first object is built: eager unwraps all of it."""
    import torch._dynamo

    net = _network()
    stock = torch.optim.Adam(net.parameters(), lr=0.1)  # wraps torch.optim.Adam.step once more
    ours = eager(torch.optim.Adam)(net.parameters(), lr=0.1)
    breaks: list[int] = []
    monkeypatch.setattr(torch._dynamo, "graph_break", lambda: breaks.append(1))
    net(torch.randn(2, 1, 8, 8)).sum().backward()
    ours.step()
    assert breaks == []  # none of torch's compiler wrappers ran
    stock.step()
    assert breaks  # the spy sees them where they run
