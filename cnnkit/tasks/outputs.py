"""What ``cnnkit predict`` reports for one image file: its top classes, or the files written from it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ClassScore:
    """One of the top classes of an image."""

    index: int  # class index, e.g. 285
    name: str  # class name, e.g. "Egyptian cat"
    prob: float  # softmax probability


@dataclass(frozen=True)
class ImagePrediction:
    """The top classes of one image file, or why it could not be classified."""

    file: str
    top: tuple[ClassScore, ...] = field(default_factory=tuple)
    error: str | None = None  # set when the file could not be read; `top` is then empty

    def as_dict(self) -> dict[str, Any]:
        """JSON form: ``{"file", "top": [{"class", "name", "prob"}]}`` or ``{"file", "error"}``."""
        if self.error is not None:
            return {"file": self.file, "error": self.error}
        return {"file": self.file, "top": [{"class": s.index, "name": s.name, "prob": round(s.prob, 6)} for s in self.top]}


@dataclass(frozen=True)
class ImageOutput:
    """What a segmentation, reconstruction or denoising run made of one image file, or why it could not."""

    file: str
    outputs: dict[str, str] = field(default_factory=dict)  # kind ("mask", "overlay", "denoised", ...) -> written file
    classes: tuple[tuple[int, str, float], ...] = ()  # segment: (class, name, fraction of the pixels), largest first
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"file": self.file, "error": self.error}
        result: dict[str, Any] = {"file": self.file, "outputs": self.outputs}
        if self.classes:
            result["classes"] = [{"class": c, "name": n, "fraction": round(f, 6)} for c, n, f in self.classes]
        return result


@dataclass(frozen=True)
class ImageObjects:
    """What a localisation or detection run found in one image file: its objects and the picture written."""

    file: str
    outputs: dict[str, str] = field(default_factory=dict)  # "boxes" -> the image with the boxes drawn
    # (class, name, score, (x0, y0, x1, y1) in the input's pixels), best first
    objects: tuple[tuple[int, str, float, tuple[float, ...]], ...] = ()
    error: str | None = None
    masks: tuple[str, ...] = ()  # instance: each object's mask, a PNG in the image's own pixels

    def as_dict(self) -> dict[str, Any]:
        if self.error is not None:
            return {"file": self.file, "error": self.error}
        objects = [{"class": c, "name": n, "score": round(s, 6), "box": list(b)} for c, n, s, b in self.objects]
        for found, mask in zip(objects, self.masks, strict=False):
            found["mask"] = mask
        return {"file": self.file, "outputs": self.outputs, "objects": objects}
