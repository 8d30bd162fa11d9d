"""What the explorer computes, as JSON-ready dicts: one network, its images, and every view of one image.

:class:`Explorer` is the whole server-side state of ``cnnkit explore``: the
network (resolved by :func:`cnnkit.visualize.resolve.resolve`, the one answer
to "which network does this name mean"), the images a user can pick (each
prepared by the one image-to-input path, :func:`cnnkit.images.input_from_file`,
or taken from the run's own held-out split), and the views: the prediction,
the layer columns, feature maps, one unit worked (:mod:`cnnkit.explore.unit`),
Grad-CAM and saliency, and learnt filters. The web application
(:mod:`cnnkit.explore.app`) and the static page (:mod:`cnnkit.explore.static`)
only move these dicts; a notebook can call them directly.
"""

from __future__ import annotations

import base64
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from cnnkit.explore import unit as units
from cnnkit.images import IMAGE_SUFFIXES, BadImage, input_from_file, open_upright, png_bytes
from cnnkit.visualize.resolve import Subject

MAX_UPLOAD_BYTES = 16 << 20  # an uploaded image larger than this is refused before it is decoded
MAX_UPLOAD_PIXELS = 40_000_000  # and one with more pixels (a photo of 40 megapixels still fits)
MAX_UPLOADS = 64  # uploads kept; older ones are forgotten
MAX_COLUMNS = 48  # the automatic depth shows at most this many layers side by side
SAMPLES = 24  # held-out images offered from a run's own data
_CACHED_PASSES = 3  # images whose hooked forward pass is kept (a large network's activations are big)
_TOP_CLASSES = 10


def png_data(pixels: np.ndarray) -> str:
    """A ``data:`` URL of the PNG of ``pixels`` (uint8 ``(H, W)`` or ``(H, W, 3)``)."""
    return "data:image/png;base64," + base64.b64encode(png_bytes(pixels)).decode("ascii")


def _picture(x: torch.Tensor, subject: Subject) -> np.ndarray:
    shown = subject.prep.show(x[0])  # (H, W) or (H, W, 3) on [0, 1]
    return np.round(shown * 255).astype(np.uint8)


def colour_maps(maps: torch.Tensor, low: float, high: float) -> list[np.ndarray]:
    """``(K, H, W)`` activations -> K RGB pictures on one scale: blue (negative) - white (0) - red (positive) when
    the layer has both signs, else white (low) to dark red (high). Shared scale: maps of a layer compare."""
    values = maps.detach().double().cpu().numpy()
    if low < 0 < high:
        scaled = np.clip(values / max(abs(low), abs(high)), -1, 1)  # -1 .. 1
        pos, neg = np.clip(scaled, 0, 1), np.clip(-scaled, 0, 1)
        rgb = np.stack([1 - neg, 1 - pos - neg, 1 - pos], -1)  # white at 0, red up, blue down
        rgb = np.clip(rgb, 0, 1)
    else:
        t = np.clip((values - low) / (high - low), 0, 1) if high > low else np.zeros_like(values)
        rgb = np.stack([1 - 0.45 * t, 1 - 0.95 * t, 1 - 0.95 * t], -1)
    return [np.round(image * 255).astype(np.uint8) for image in rgb]


@dataclass
class Picture:
    """One image a user can explore: prepared as the network's input."""

    id: str  # "heldout-3", "file-0", "upload-1": never a path
    title: str
    x: torch.Tensor  # (1, C, H, W), prepared
    label: int | None = None  # the true class, when known


@dataclass
class Call:
    """One call of one named module in the hooked forward pass (one image)."""

    name: str
    module: nn.Module
    x: torch.Tensor | None  # its input (leaf modules only), without the batch
    out: torch.Tensor  # its output, without the batch
    leaf: bool
    ptr_in: int  # the identity of the input and output tensors (unique within one pass), to see which layer
    ptr_out: int  # reads which output


def _level(name: str) -> int:
    return name.count(".") + 1


class Explorer:
    """The explorer's state: a network (a :class:`~cnnkit.visualize.resolve.Subject`) and its pictures."""

    def __init__(self, subject: Subject, pictures: Sequence[Picture] = (), task: str = "classify") -> None:
        self.subject = subject
        self.task = task
        self.pictures: dict[str, Picture] = {p.id: p for p in pictures}
        self._passes: OrderedDict[str, list[Call]] = OrderedDict()
        self._outputs: dict[str, torch.Tensor] = {}
        self._uploads = 0
        self.lock = threading.Lock()  # one computation at a time: torch already uses every core
        self.modules = {name: m for name, m in subject.model.named_modules() if name}
        self.leaves = {name for name, m in self.modules.items() if next(m.children(), None) is None}
        self.max_depth = max((_level(n) for n in self.modules), default=1)
        self.auto_depth = self._auto_depth()

    # ---- opening ------------------------------------------------------------------------------------------------
    @classmethod
    def open(cls, target: str | Path, *, pretrained: bool = False, images: str | Path | None = None,
             samples: int = SAMPLES) -> Explorer:
        """The explorer for ``target`` (a run directory, a layer table or a zoo name): the run's held-out images
        (``samples`` of them, the classes taken in turn), the image files of the folder ``images``, or, when
        neither gives any, the scikit-image photographs. ``samples=0``: no images (the caller adds its own)."""
        from cnnkit.visualize.resolve import resolve

        subject = resolve(target, pretrained=pretrained)
        task = "classify"
        pictures: list[Picture] = []
        if subject.run_dir is not None:
            from cnnkit.runs import Run

            run = Run.open(subject.run_dir)
            task = run.card.task
            if samples > 0:
                pictures += _held_out(run, subject, samples)
        explorer = cls(subject, pictures, task)
        if images is not None:
            explorer.add_folder(Path(images))
        if not explorer.pictures and samples > 0:
            explorer.add_folder(_photographs())
        return explorer

    def add_folder(self, folder: Path) -> None:
        """Every image file directly in ``folder`` (sorted by name), prepared by the one image-to-input path."""
        if not folder.is_dir():
            raise ValueError(f"--images {folder}: not a folder of images")
        files = sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())
        if not files:
            raise ValueError(f"--images {folder}: no image files in it ({', '.join(IMAGE_SUFFIXES)})")
        start = sum(1 for key in self.pictures if key.startswith("file-"))
        for number, path in enumerate(files[:200], start):
            try:
                x = input_from_file(path, self.subject.prep)[None]
            except OSError as error:
                print(f"skipped: {error}")
                continue
            self.pictures[f"file-{number}"] = Picture(f"file-{number}", path.name, x)

    def add_upload(self, data: bytes, name: str = "upload") -> Picture:
        """An uploaded (or drawn) image file's bytes, prepared like any file; a bad one is a ValueError saying why."""
        if len(data) > MAX_UPLOAD_BYTES:
            raise ValueError(f"the upload is {len(data):,} bytes, more than the {MAX_UPLOAD_BYTES:,} allowed")
        if not data:
            raise ValueError("the upload is empty")
        with tempfile.TemporaryDirectory(prefix="cnnkit-explore-") as folder:
            path = Path(folder) / "upload.png"  # the name is ours; Pillow reads the format from the bytes
            path.write_bytes(data)
            try:
                image, _ = open_upright(path, max_pixels=MAX_UPLOAD_PIXELS)
                image.close()
                x = input_from_file(path, self.subject.prep)[None]
            except BadImage as error:
                raise ValueError(f"the uploaded image {str(error).replace(str(path), 'upload')}") from None
            except OSError as error:
                raise ValueError(str(error).replace(repr(str(path)), "the upload").replace(str(path), "upload")) \
                    from None
        self._uploads += 1
        key = f"upload-{self._uploads}"
        title = "".join(ch for ch in name if ch.isprintable())[:80] or key
        self.pictures[key] = Picture(key, title, x)
        uploads = [k for k in self.pictures if k.startswith("upload-")]
        for old in uploads[:-MAX_UPLOADS]:  # the oldest uploads make room: memory does not grow with use
            del self.pictures[old]
            self._passes.pop(old, None)
            self._outputs.pop(old, None)
        return self.pictures[key]

    # ---- looking up -------------------------------------------------------------------------------------------
    def picture(self, image: str) -> Picture:
        found = self.pictures.get(image)
        if found is None:
            raise LookupError(f"no image {image!r}; the images are listed by /api/images")
        return found

    def _pass(self, image: str) -> list[Call]:
        """Every named module's call for ``image`` (inputs kept for leaves), computed once and cached."""
        if image in self._passes:
            self._passes.move_to_end(image)
            return self._passes[image]
        picture = self.picture(image)
        calls: list[Call] = []
        inputs_seen: dict[str, list[tuple[torch.Tensor | None, int]]] = {}  # per module, its calls' inputs in order
        alive: list[Any] = []  # every raw input and output, held until the pass ends: no id is reused meanwhile

        def before(name: str) -> Any:
            def record(module: nn.Module, inputs: Any) -> None:
                from cnnkit.hooks import first_tensor

                x = first_tensor(inputs)
                alive.append(x)
                # taken before the module runs: an in-place module (ReLU(inplace=True)) overwrites its input
                kept = x[0].detach().clone() if name in self.leaves and x is not None else None
                inputs_seen.setdefault(name, []).append((kept, -1 if x is None else id(x)))
            return record

        def after(name: str) -> Any:
            def record(module: nn.Module, inputs: Any, output: Any) -> None:
                from cnnkit.hooks import first_tensor

                out = first_tensor(output)
                kept, x_id = inputs_seen[name].pop()
                if out is None:
                    return
                alive.append(out)
                calls.append(Call(name, module, kept, out[0].detach().clone(), name in self.leaves, x_id, id(out)))
            return record

        handles = [h for n, m in self.modules.items()
                   for h in (m.register_forward_pre_hook(before(n)), m.register_forward_hook(after(n)))]
        try:
            with torch.no_grad():
                output = self.subject.model.eval()(picture.x)
        finally:
            for handle in handles:
                handle.remove()
            alive.clear()
        from cnnkit.hooks import first_tensor

        tensor = first_tensor(output)
        assert tensor is not None
        self._outputs[image] = tensor[0].detach()
        self._passes[image] = calls
        while len(self._passes) > _CACHED_PASSES:
            old, _ = self._passes.popitem(last=False)
            self._outputs.pop(old, None)
        return calls

    def _columns(self, image: str, depth: int) -> list[tuple[str, Call, int]]:
        """``(column id, call, index in the pass)`` of the modules shown at ``depth``: leaves down to it and the
        blocks at exactly it, in the order they ran; a module called twice is two columns (``name@2``)."""
        seen: dict[str, int] = {}
        columns = []
        for index, call in enumerate(self._pass(image)):
            level = _level(call.name)
            if (call.leaf and level <= depth) or (not call.leaf and level == depth):
                seen[call.name] = seen.get(call.name, 0) + 1
                key = call.name if seen[call.name] == 1 else f"{call.name}@{seen[call.name]}"
                columns.append((key, call, index))
        return columns

    def _auto_depth(self) -> int:
        """The deepest view with at most :data:`MAX_COLUMNS` layers (counted from the module tree)."""
        for depth in range(self.max_depth, 0, -1):
            shown = [n for n in self.modules if (n in self.leaves and _level(n) <= depth) or
                     (n not in self.leaves and _level(n) == depth)]
            if len(shown) <= MAX_COLUMNS:
                return depth
        return 1

    def _column(self, image: str, layer: str) -> tuple[Call, int]:
        """The call that column ``layer`` (as :meth:`layers` names it, at any depth) shows, and its index."""
        for depth in range(self.max_depth, 0, -1):
            for key, call, index in self._columns(image, depth):
                if key == layer:
                    return call, index
        raise LookupError(f"no layer {layer!r} in {self.subject.name}; the layers are listed by /api/layers")

    # ---- views -------------------------------------------------------------------------------------------------
    def about(self) -> dict[str, Any]:
        """The network and how it reads images."""
        s = self.subject
        return {"name": s.name, "kind": s.kind, "task": self.task, "pretrained": s.pretrained,
                "input_shape": list(s.prep.input_shape), "fit": s.prep.fit, "mean": s.prep.mean, "std": s.prep.std,
                "classes": len(s.class_names), "depth": self.auto_depth, "max_depth": self.max_depth,
                "drawable": s.prep.input_shape[0] == 1 and max(s.prep.size) <= 64}

    def images(self) -> list[dict[str, Any]]:
        names = self.subject.class_names
        with self.lock:  # an upload may be adding a picture
            pictures = list(self.pictures.values())
        return [{"id": p.id, "title": p.title, "label": p.label,
                 "label_name": None if p.label is None or p.label >= len(names) else names[p.label]}
                for p in pictures]

    def image(self, image: str) -> dict[str, Any]:
        """The prepared input as the network sees it (normalisation undone for display), and its channels."""
        picture = self.picture(image)
        x = picture.x[0]
        return {"id": image, "title": picture.title, "png": png_data(_picture(picture.x, self.subject)),
                "shape": list(x.shape), "min": float(x.min()), "max": float(x.max())}

    def predict(self, image: str) -> dict[str, Any]:
        """Class probabilities (softmax of the network's scores), the top ones first, and the true class."""
        with self.lock:
            output = self.class_scores(image)
            raw = self._outputs[image]
        picture = self.picture(image)
        names = self.subject.class_names
        result: dict[str, Any] = {"id": image, "label": picture.label,
                                  "label_name": None if picture.label is None else names[picture.label]}
        if output is None:
            shape = "x".join(map(str, raw.shape))
            return {**result, "classes": [], "note": f"the network outputs {shape} per image, not class scores "
                                                     f"(task {self.task}); its layers are shown below"}
        probabilities = torch.softmax(output.double(), 0)
        order = torch.argsort(probabilities, descending=True)[:_TOP_CLASSES]
        classes = [{"index": int(k), "name": names[int(k)] if names else str(int(k)), "probability":
                    float(probabilities[k]), "score": float(output[k])} for k in order]
        return {**result, "classes": classes, "predicted": classes[0]["index"],
                "predicted_name": classes[0]["name"]}

    def layers(self, image: str | None = None, depth: int | None = None) -> dict[str, Any]:
        """The columns at ``depth`` (default: the automatic depth): name, type, output shape, parameters, MACs and
        receptive field (from :func:`cnnkit.summarize.summary`, the numbers ``cnnkit summary`` prints)."""
        from cnnkit.summarize import summary

        depth = self._depth(depth)
        image = image or next(iter(self.pictures))
        with self.lock:
            columns = self._columns(image, depth)
            rows = summary(self.subject.model, self.subject.prep.input_shape, depth=depth,
                           name=self.subject.name).rows
        facts: dict[str, list[Any]] = {}
        for shown in rows:
            facts.setdefault(shown.name, []).append(shown)
        used: dict[str, int] = {}
        result = []
        for key, call, _ in columns:
            k = used.get(call.name, 0)
            used[call.name] = k + 1
            calls_of = facts.get(call.name, [])
            row = calls_of[k] if k < len(calls_of) else None
            field = None if row is None else row.receptive_field
            result.append({
                "id": key, "name": call.name, "type": type(call.module).__name__,
                "output_shape": list(call.out.shape), "maps": call.out.dim() == 3,
                "params": sum(p.numel() for p in call.module.parameters()),
                "macs": None if row is None else row.facts.macs,
                "kernel": "" if row is None else row.facts.kernel, "stride": "" if row is None else row.facts.stride,
                "padding": "" if row is None else row.facts.padding,
                "receptive_field": field if isinstance(field, str) or field is None else list(field),
                "leaf": call.leaf, "filters": isinstance(call.module, nn.Conv2d)})
        return {"depth": depth, "max_depth": self.max_depth, "layers": result,
                "total_params": sum(p.numel() for p in self.subject.model.parameters())}

    def _depth(self, depth: int | None) -> int:
        if depth is None:
            return self.auto_depth
        if not 1 <= depth <= self.max_depth:
            raise ValueError(f"depth must be 1 to {self.max_depth} for {self.subject.name}. Received: depth={depth}")
        return depth

    def maps(self, image: str, layer: str, start: int = 0, count: int = 8) -> dict[str, Any]:
        """Feature maps ``start`` .. ``start + count`` of ``layer`` for ``image``, coloured on the layer's one
        scale (:func:`colour_maps`); a vector output comes back as its values."""
        if count < 1 or count > 256 or start < 0:
            raise ValueError(f"start must be >= 0 and count 1 to 256. Received: start={start}, count={count}")
        with self.lock:
            call, _ = self._column(image, layer)
        out = call.out
        low, high = float(out.min()), float(out.max())
        result: dict[str, Any] = {"id": image, "layer": layer, "shape": list(out.shape), "min": low, "max": high}
        if out.dim() != 3:
            values = out.flatten()
            return {**result, "values": [float(v) for v in values[:4096]]}
        channels = out.shape[0]
        chosen = list(range(min(start, channels), min(start + count, channels)))
        pictures = colour_maps(out[chosen], low, high) if chosen else []
        return {**result, "start": start, "channels": channels,
                "maps": [{"channel": c, "png": png_data(p), "min": float(out[c].min()), "max": float(out[c].max())}
                         for c, p in zip(chosen, pictures, strict=True)]}

    def unit(self, image: str, layer: str, at: Sequence[int]) -> dict[str, Any]:
        """One unit of ``layer`` worked (:mod:`cnnkit.explore.unit`), the pointwise layers right after it
        (``then``), and the input pixels it depends on (``receptive_field``)."""
        with self.lock:
            call, index = self._column(image, layer)
            worked = units.work(call.module, layer, call.x, call.out, tuple(int(a) for a in at))
            steps = [units.work(later.module, later.name, later.x, later.out, tuple(worked["unit"]))
                     for later in self.chain(image, index)]
            worked["then"] = steps
            worked["final"] = steps[-1]["pytorch"] if steps else worked["pytorch"]
            worked["receptive_field"] = self._receptive_field(image, index, tuple(worked["unit"]))
        worked["id"] = image
        return worked

    def chain(self, image: str, index: int) -> list[Call]:
        """The pointwise layers (batch normalisation, the activation) that take call ``index``'s output next, in
        turn, each reading the previous one's output (the same storage, or a copy of the same shape)."""
        calls, current, found = self._pass(image), self._pass(image)[index], []
        for later in calls[index + 1:]:
            if not later.leaf:
                continue
            if later.ptr_in != current.ptr_out or not isinstance(later.module, units.POINTWISE) or \
                    later.out.shape != current.out.shape or later.x is None:
                break
            found.append(later)
            current = later
        return found

    def _receptive_field(self, image: str, index: int, at: tuple[int, ...]) -> dict[str, Any] | None:
        """The input pixels whose value moves the unit (non-zero gradient), as a box ``[y0, x0, y1, x1]``
        (inclusive) on the prepared input, with how many pixels inside it count."""
        picture = self.picture(image)
        target = self._pass(image)[index]
        x = picture.x.clone().requires_grad_(True)
        taken: list[torch.Tensor] = []
        seen = 0
        wanted = sum(1 for c in self._pass(image)[:index + 1] if c.name == target.name)

        def keep(module: nn.Module, inputs: Any, output: Any) -> None:
            nonlocal seen
            seen += 1
            if seen == wanted:
                from cnnkit.hooks import first_tensor

                tensor = first_tensor(output)
                if tensor is not None:
                    taken.append(tensor.clone())  # an in-place layer after it must not change what is kept

        handle = target.module.register_forward_hook(keep)
        try:
            with torch.enable_grad():
                self.subject.model.eval()(x)
                if not taken or not taken[0].requires_grad:
                    return None
                (gradient,) = torch.autograd.grad(taken[0][(0, *at)], x, allow_unused=True)
        finally:
            handle.remove()
        if gradient is None:
            return None
        touched = (gradient[0].abs().sum(0) > 0).nonzero()
        if not len(touched):
            return None
        (y0, x0), (y1, x1) = touched.min(0).values.tolist(), touched.max(0).values.tolist()
        return {"box": [y0, x0, y1, x1], "pixels": len(touched)}

    def attribution(self, image: str, method: str = "gradcam", target: int | None = None) -> dict[str, Any]:
        """Grad-CAM or saliency of class ``target`` (default: the predicted one), as a picture over the input."""
        from cnnkit.visualize.gradcam import gradcam, saliency

        if method not in ("gradcam", "saliency"):
            raise ValueError(f"method must be gradcam or saliency. Received: method={method!r}")
        names = self.subject.class_names
        if target is not None and not 0 <= target < max(len(names), 1):
            raise ValueError(f"target must be a class index 0 to {len(names) - 1}. Received: target={target}")
        picture = self.picture(image)
        with self.lock:
            scores = self.class_scores(image)
            if scores is None:
                raise ValueError(f"{method} explains class scores; this network (task {self.task}) has none")
            if target is None:  # the predicted class, among the class scores only (a localize network's box follows)
                target = int(scores.argmax())
            found = (gradcam if method == "gradcam" else saliency)(self.subject.model, picture.x, target)
        heat = found.heatmap  # (H, W) on [0, 1]
        base = _picture(picture.x, self.subject).astype(np.float64) / 255
        if base.ndim == 2:
            base = np.repeat(base[..., None], 3, -1)
        colour = np.stack([np.clip(1.5 - abs(4 * heat - 3), 0, 1), np.clip(1.5 - abs(4 * heat - 2), 0, 1),
                           np.clip(1.5 - abs(4 * heat - 1), 0, 1)], -1)  # jet
        overlay = np.round((0.5 * base + 0.5 * colour) * 255).astype(np.uint8)
        return {"id": image, "method": found.method, "target": found.target,
                "target_name": names[found.target] if names else str(found.target),
                "probability": found.probability, "layer": found.layer, "png": png_data(overlay),
                "heat": png_data(np.round(heat * 255).astype(np.uint8)), "caution": found.caution}

    def class_scores(self, image: str) -> torch.Tensor | None:
        """The network's ``(K,)`` class scores for ``image`` (a localize network's, without its box), or None when
        it outputs something else (a map, an image, detections)."""
        self._pass(image)
        output = self._outputs[image]
        names = self.subject.class_names
        if output.dim() != 1 or self.task not in ("classify", "localize"):
            return None
        if self.task == "localize":  # K class scores, then the box
            output = output[:len(names)]
        return output if not names or output.numel() == len(names) else None

    def filters(self, layer: str, start: int = 0, count: int = 16) -> dict[str, Any]:
        """The learnt kernels of convolution ``layer``: for each filter, one picture per input channel (at most 16
        channels) on the layer's one scale, and its bias."""
        from cnnkit.visualize.filters import conv_weight

        if count < 1 or count > 256 or start < 0:
            raise ValueError(f"start must be >= 0 and count 1 to 256. Received: start={start}, count={count}")
        name, module, weight = conv_weight(self.subject.model, layer.split("@")[0])
        low, high = float(weight.min()), float(weight.max())
        chosen = range(min(start, weight.shape[0]), min(start + count, weight.shape[0]))
        bias = getattr(module, "bias", None)
        found = [{"filter": f, "bias": None if bias is None else float(bias.detach()[f]),
                  "channels": [png_data(p) for p in colour_maps(weight[f, :16], low, high)]} for f in chosen]
        return {"layer": name, "shape": list(weight.shape), "min": low, "max": high, "start": start,
                "filters": found}


def _held_out(run: Any, subject: Subject, samples: int) -> list[Picture]:
    """``samples`` images of the run's held-out split, the classes taken in turn, prepared as evaluation does."""
    try:
        data, split = run.held_out()
    except (OSError, ValueError) as error:
        print(f"note: the run's held-out images cannot be read ({error}); pick images with --images or upload one")
        return []
    labels = data.labels
    order: list[int] = []
    by_class = [torch.nonzero(labels == k).flatten().tolist() for k in range(int(labels.max()) + 1)] if len(labels) else []
    for turn in range(samples):
        for indices in by_class:
            if turn < len(indices) and len(order) < samples:
                order.append(indices[turn])
    names = subject.class_names
    pictures = []
    for i in order:
        x = subject.prep.normalise(data.images[i:i + 1])
        label = int(labels[i])
        title = f"{split} #{i}" + (f" ({names[label]})" if label < len(names) else "")
        pictures.append(Picture(f"heldout-{i}", title, x, label if label < len(names) else None))
    return pictures


def _photographs() -> Path:
    """scikit-image's photographs (chelsea the cat, coffee, astronaut, rocket) as PNG files in a private folder."""
    from skimage import data

    folder = Path(tempfile.mkdtemp(prefix="cnnkit-explore-photos-"))
    for name in ("chelsea", "coffee", "astronaut", "rocket"):
        (folder / f"{name}.png").write_bytes(png_bytes(getattr(data, name)()))
    return folder
