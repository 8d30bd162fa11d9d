"""Image files through a network: the library side of ``cnnkit predict``.

- :func:`predict`: a pretrained zoo model's top classes. Each image is prepared
  as the weights were trained: RGB, the whole image resized to the weights'
  input size with their interpolation (``fit="stretch"``), scaled to [0, 1],
  normalised with their mean and std.
- :func:`predict_run`: a trained run's network, each image read exactly as
  the run's training data was (:meth:`cnnkit.runs.Run.input_from_file`); the
  run's task says what comes out: top classes (classify), or PNG files of
  masks, reconstructions or denoised images (the others).

An image that cannot be read does not stop the others; its result carries the error.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from cnnkit.images import ImagePrep
from cnnkit.models.pretrained import PretrainedWeights
from cnnkit.runs import Run
from cnnkit.tasks import Prediction
from cnnkit.tasks.classify import classify_files
from cnnkit.tasks.outputs import ImagePrediction


def weights_prep(weights: PretrainedWeights) -> ImagePrep:
    """How images are prepared for a pretrained weight set: its size, interpolation and normalisation."""
    return ImagePrep(weights.input_size, "stretch", weights.interpolation, weights.mean, weights.std)


def predict(files: Sequence[str | Path], model: str = "efficientnet_lite0", top: int = 5,
            batch_size: int = 16) -> list[ImagePrediction]:
    """The top-``top`` classes of each image file under the pretrained zoo model ``model``, in order.

        >>> [p.top[0].name for p in predict(["chelsea.png"])]  # doctest: +SKIP
        ['Egyptian cat']
    """
    from cnnkit.models.registry import create, info, names

    weights = info(model).weights
    if weights is None:
        with_weights = [n for n in names() if info(n).weights is not None]
        raise ValueError(
            f"predict needs pretrained weights and model {model!r} has none; models with weights: "
            f"{', '.join(with_weights)}. Received: model={model!r}"
        )
    return classify_files(create(model, pretrained=True), weights_prep(weights), files, weights.class_names(), top,
                          batch_size)


def predict_run(run: str | Path | Run, files: Sequence[str | Path], top: int = 5,
                out: str | Path | None = None) -> list[Prediction]:
    """What the run's network makes of each image file: ``ImagePrediction`` (classify: the top ``top`` classes)
    or ``ImageOutput`` (the files written into ``out``, default beside each image), in order."""
    opened = Run.open(run)
    card = opened.card
    return card.make_task().predict_files(opened.network(), card.prep(), files, card.class_names, top=top,
                                          out=None if out is None else Path(out))
