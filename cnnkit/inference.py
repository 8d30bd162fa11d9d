"""Image files through a network: the library side of ``cnnkit predict``.

- :func:`predict`: a pretrained zoo model's top classes. Each image is prepared
  as the weights were trained: RGB, the whole image resized to the weights'
  input size with their interpolation (``fit="stretch"``), scaled to [0, 1],
  normalised with their mean and std.
- :func:`localize_pretrained`: a pretrained classifier's box for each image, from
  its class activation map (CAM localisation), in the file's own pixels.
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
from cnnkit.tasks.outputs import ImageObjects, ImageOutput, ImagePrediction


def weights_prep(weights: PretrainedWeights) -> ImagePrep:
    """How images are prepared for a pretrained weight set: its size, interpolation and normalisation."""
    return ImagePrep(weights.input_size, "stretch", weights.interpolation, weights.mean, weights.std)


def predict(files: Sequence[str | Path], model: str = "efficientnet_lite0", top: int = 5,
            batch_size: int = 16) -> list[ImagePrediction]:
    """The top-``top`` classes of each image file under the pretrained zoo model ``model``, in order.

        >>> [p.top[0].name for p in predict(["chelsea.png"])]  # doctest: +SKIP
        ['Egyptian cat']
    """
    from cnnkit.models.registry import create

    weights = _weights(model)
    return classify_files(create(model, pretrained=True), weights_prep(weights), files, weights.class_names(), top,
                          batch_size)


def localize_pretrained(files: Sequence[str | Path], model: str = "efficientnet_lite0", target: str | int | None = None,
                        out: str | Path | None = None) -> list[ImageObjects | ImageOutput]:
    """A box per image file from a pretrained classifier that never saw a box: the CAM localisation of Zhou et al.
    (:mod:`cnnkit.visualize.cam_box`) on the Grad-CAM map of the top class (or of ``target``, a class index or name),
    mapped back to the file's own pixels; ``NAME.boxes.png`` written into ``out`` (default: beside each image)."""
    import torch

    from cnnkit.images import input_from_file, source_size
    from cnnkit.models.registry import create
    from cnnkit.tasks.localize import write_objects
    from cnnkit.visualize.cam_box import cam_box
    from cnnkit.visualize.gradcam import class_index, gradcam

    weights = _weights(model)
    network, prep, names = create(model, pretrained=True).eval(), weights_prep(weights), weights.class_names()
    chosen = None if target is None else class_index(target, names)
    results: list[ImageObjects | ImageOutput] = []
    for file in files:
        try:
            x = input_from_file(file, prep)[None]  # (1, 3, H, W)
        except OSError as error:
            results.append(ImageOutput(str(file), error=str(error)))
            continue
        attribution = gradcam(network, x, chosen)
        box = prep.to_source(torch.tensor(cam_box(attribution.heatmap), dtype=torch.float32), source_size(file))
        where = (Path(out) if out is not None else Path(file).parent) / Path(file).stem
        results.append(write_objects(str(file), box[None], torch.tensor([attribution.probability]),
                                     torch.tensor([attribution.target]), names, where))
    return results


def _weights(model: str) -> PretrainedWeights:
    """The pretrained weights of zoo model ``model``; a model without any is a ValueError listing those with."""
    from cnnkit.models.registry import info, names

    weights = info(model).weights
    if weights is None:
        with_weights = [n for n in names() if info(n).weights is not None]
        raise ValueError(
            f"predict needs pretrained weights and model {model!r} has none; models with weights: "
            f"{', '.join(with_weights)}. Received: model={model!r}"
        )
    return weights


def predict_run(run: str | Path | Run, files: Sequence[str | Path], top: int = 5,
                out: str | Path | None = None) -> list[Prediction]:
    """What the run's network makes of each image file: ``ImagePrediction`` (classify: the top ``top`` classes)
    or ``ImageOutput`` (the files written into ``out``, default beside each image), in order."""
    opened = Run.open(run)
    card = opened.card
    return card.make_task().predict_files(opened.network(), card.prep(), files, card.class_names, top=top,
                                          out=None if out is None else Path(out))
