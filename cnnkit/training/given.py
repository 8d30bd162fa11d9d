"""A user's own network and data given to ``cnnkit.train`` from Python, instead of a zoo name and a dataset name.

``cnnkit.train(model=MyNet(), data=(x, y), test=(x_test, y_test), epochs=2)``: the module is trained as it is
(its own initial weights; the run records its class's import path, :func:`cnnkit.network.module_source`), the data
becomes the same in-memory uint8 splits every dataset is (:mod:`cnnkit.data.given`), cut by the same options
(``val_split``, ``classes``, ``train_per_class``). A run of given data keeps its held-out split in the run
(``heldout.safetensors``), so ``evaluate``, the report and predict work on it later without the arrays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from cnnkit.data import DataSplits
from cnnkit.data.given import is_given, to_dataset
from cnnkit.runs import GIVEN_DATA

if TYPE_CHECKING:
    from cnnkit.tasks import Task
    from cnnkit.training.config import TrainConfig

MEMORY = GIVEN_DATA  # the `data` a run of given data records: no name loads it again


@dataclass(frozen=True)
class Given:
    """What the caller gave instead of names; all None: everything comes from the configuration's names."""

    module: nn.Module | None = None
    data: Any = None  # (x, y), x alone (reconstruct, denoise), or a Dataset
    test: Any = None  # the same kinds: the split evaluated during and after training
    class_names: tuple[str, ...] | None = None

    @classmethod
    def take(cls, options: dict[str, Any]) -> Given:
        """Take the given network and data out of ``train``'s keyword ``options``, leaving names in their place
        (the configuration records ``model`` as the class's name and ``data`` as ``"memory"``)."""
        module = options.get("model")
        if module is not None and not isinstance(module, str | nn.Module):
            raise TypeError(f"model must be a zoo name, a layer table's path or an nn.Module. Received: "
                            f"{type(module).__name__}")
        data, names = options.get("data"), options.pop("class_names", None)
        given = cls(module if isinstance(module, nn.Module) else None,
                    data if data is not None and is_given(data) else None,
                    options.pop("test", None), None if names is None else tuple(str(name) for name in names))
        if given.module is not None:
            options["model"] = type(given.module).__name__
        if given.data is not None:
            options["data"] = MEMORY
        elif given.test is not None or given.class_names is not None:
            raise TypeError("test= and class_names= go with data given from Python (data=(x, y) or a Dataset); a "
                            "named dataset has its own test split and class names")
        return given

    def splits(self, config: TrainConfig, task: Task) -> DataSplits:
        """The given data as the run's splits, cut by ``config``'s data options like a named dataset."""
        from cnnkit.data.catalog import refine

        for name, value in (("image_size", config.image_size), ("grayscale", config.grayscale),
                            ("data_dir", config.data_dir)):
            if value is not None:
                raise ValueError(f"{name} applies to datasets cnnkit reads from files; the data given from Python is "
                                 f"used as it is (resize or convert the arrays first). Received: {name}={value!r}")
        per_pixel = task.name == "segment"
        train = to_dataset(self.data, name=f"{MEMORY}/train", class_names=self.class_names, per_pixel=per_pixel,
                           needs_targets=task.needs_classes)
        test = None if self.test is None else to_dataset(
            self.test, name=f"{MEMORY}/test", class_names=train.class_names, per_pixel=per_pixel,
            needs_targets=task.needs_classes)
        splits = DataSplits(train, test, None, test_official=test is not None, seed=config.seed)
        return refine(splits, MEMORY, classes=config.classes, val_split=config.val_split, seed=config.seed,
                      train_per_class=config.train_per_class)


def check_module(model: nn.Module, shape: Sequence[int], expected: tuple[int, ...], device: torch.device) -> None:
    """A forward pass of two blank images ``(2, *shape)`` through the user's ``model`` (on ``device``) gives
    ``(2, *expected)``, or a ValueError names the class, the data's shape and what the task needs."""
    name = type(model).__name__
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            output = model(torch.zeros(2, *shape, device=device))
    except Exception as error:  # the user's forward: any exception is theirs to see, with the shapes
        raise ValueError(f"model {name} cannot take the data's {'x'.join(map(str, shape))} images ("
                         f"{type(error).__name__}: {error})") from None
    finally:
        model.train(was_training)
    if not isinstance(output, torch.Tensor) or tuple(output.shape[1:]) != tuple(expected):
        got = f"shape {tuple(output.shape)}" if isinstance(output, torch.Tensor) else type(output).__name__
        raise ValueError(f"model {name} outputs {got} for 2 images of {'x'.join(map(str, shape))}, but the task "
                         f"needs (2, {', '.join(map(str, expected))}): one score per class, or for segment a map per "
                         f"class, for reconstruct and denoise the image")


NOTHING_GIVEN = Given()  # everything from the configuration's names
