"""``DataSpec``: which data a run read, in one value: loaded the same way by training, evaluation, the report and transfer.

A run records its ``DataSpec`` (in ``model.json``, see :mod:`cnnkit.runs`), so
that everything that reads the run later sees the very images, classes and
splits that training saw: ``cnnkit evaluate`` its held-out split, the report
its test images with their true classes (``--classes`` relabels them, so the
selection must travel with the run).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from cnnkit.data.dataset import DataSplits, ImageDataset


@dataclass(frozen=True)
class DataSpec:
    """The arguments of :func:`cnnkit.data.load` that pick a run's data.

    >>> spec = DataSpec("digits", val_split=0.1, classes=("5-9",))
    >>> data, split = spec.held_out()
    >>> split, data.class_names
    ('val', ('5', '6', '7', '8', '9'))
    """

    name: str  # a catalogue name or folder:PATH
    data_dir: str | None = None  # where the dataset files are (else $CNNKIT_DATA, then system paths)
    image_size: int | None = None  # folder datasets: the square size images are resized to
    grayscale: bool | None = None  # folder datasets: force grey (True) or RGB (False)
    val_split: float = 0.0  # fraction of the training set held out for validation
    seed: int = 0  # the seed of every split cnnkit draws
    skip_bad_images: bool = False  # folder datasets: skip undecodable files instead of stopping
    classes: tuple[str, ...] = ()  # keep only these classes (names, indices or ranges), relabelled 0..
    train_per_class: int | None = None  # keep this many training images per class

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DataSpec:
        """From :meth:`as_dict`, or from any mapping holding these keys among others (a run's ``config.json``)."""
        known = {f.name for f in dataclasses.fields(cls)}
        picked = {key: value for key, value in values.items() if key in known and value is not None}
        if "name" not in picked and isinstance(values.get("data"), str):
            picked["name"] = values["data"]  # a TrainConfig or TransferConfig names it `data`
        if "name" not in picked:
            raise ValueError(f"the data specification names no dataset. Received keys: {sorted(values)}")
        picked["classes"] = tuple(str(c) for c in picked.get("classes", ()))
        return cls(**picked)

    def as_dict(self) -> dict[str, Any]:
        values = dataclasses.asdict(self)
        values["classes"] = list(self.classes)
        return values

    def load(self) -> DataSplits:
        """The splits, as :func:`cnnkit.data.load` makes them from these arguments."""
        from cnnkit.data.catalog import load

        return load(self.name, data_dir=self.data_dir, image_size=self.image_size, grayscale=self.grayscale,
                    val_split=self.val_split, seed=self.seed, skip_bad_images=self.skip_bad_images,
                    classes=list(self.classes) or None, train_per_class=self.train_per_class)

    def held_out(self) -> tuple[ImageDataset, str]:
        """The split a run is evaluated on and its name: ``val`` when the run held one out, else ``test``."""
        splits = self.load()
        if splits.evaluation is None or splits.eval_split is None:
            raise ValueError(f"{self.name} has no test split; train with --val-split to evaluate on held-out data")
        return splits.evaluation, splits.eval_split

    def other(self, name: str, data_dir: str | None = None) -> DataSpec:
        """Another dataset read like this one (size, channels), whole: ``cnnkit evaluate --data NAME``."""
        return DataSpec(name, data_dir or self.data_dir, self.image_size, self.grayscale, seed=self.seed,
                        skip_bad_images=self.skip_bad_images)
