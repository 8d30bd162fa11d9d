"""``cnnkit explore ... --static page.html --image X``: the explorer as one self-contained file.

The page is the same HTML and script as the served one; instead of asking the
server, it reads the answers the server would give, computed here for the
given images and embedded as JSON: the prediction, the layer columns, the
feature maps (up to :data:`MAPS_PER_LAYER` per layer), Grad-CAM and saliency of
the predicted class, and the learnt filters. To work a clicked unit the page
needs the layer's input and weights: they are embedded as float32 arrays for
every layer while the page stays under :data:`MAX_FLOATS` numbers in all (a
small network: every layer; a large one: its first layers), and the page
computes the unit with the formulas of :mod:`cnnkit.explore.unit`. No network
access, no server: it opens from a file or a course page.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch

from cnnkit.explore import unit as units
from cnnkit.explore.app import page
from cnnkit.explore.session import Explorer, Picture
from cnnkit.fileio import atomic_write
from cnnkit.images import input_from_file

MAPS_PER_LAYER = 32  # feature maps embedded per layer and image
FILTERS_PER_LAYER = 64
MAX_FLOATS = 2_000_000  # layer inputs, outputs and weights embedded for clickable units (8 MB of float32, 11 MB as base64)


def _b64(tensor: torch.Tensor) -> str:
    return base64.b64encode(tensor.detach().float().contiguous().cpu().numpy().tobytes()).decode("ascii")


def page_data(explorer: Explorer) -> dict[str, Any]:
    """Every answer the page asks the API for, for each of ``explorer``'s images (module doc)."""
    ids = list(explorer.pictures)
    layers = explorer.layers(ids[0])
    data: dict[str, Any] = {"about": explorer.about(), "images": explorer.images(), "layers": layers, "image": {},
                            "predict": {}, "maps": {}, "attribution": {}, "filters": {}, "units": {}, "unitData": {}}
    budget = MAX_FLOATS
    for image in ids:
        data["image"][image] = explorer.image(image)
        data["predict"][image] = explorer.predict(image)
        data["maps"][image] = {layer["id"]: explorer.maps(image, layer["id"], 0, MAPS_PER_LAYER)
                               for layer in layers["layers"]}
        if explorer.class_scores(image) is not None:
            data["attribution"][image] = {method: explorer.attribution(image, method)
                                          for method in ("gradcam", "saliency")}
        data["unitData"][image] = {}
        for layer in layers["layers"]:
            call, index = explorer._column(image, layer["id"])
            spec = units.page_spec(call.module, call.x, call.out)
            if spec is None or call.x is None:
                continue
            chain = explorer.chain(image, index)
            weights = [spec[k] for k in ("weight", "bias") if isinstance(spec.get(k), torch.Tensor)]
            needed = call.x.numel() + call.out.numel() + sum(c.out.numel() for c in chain)
            needed += sum(w.numel() for w in weights) if layer["id"] not in data["units"] else 0
            if needed > budget:
                continue  # the page says to run `cnnkit explore` to work this layer's units
            budget -= needed
            if layer["id"] not in data["units"]:
                data["units"][layer["id"]] = {key: (_b64(value) if isinstance(value, torch.Tensor) else value)
                                              for key, value in spec.items()}
                if "weight" in spec:
                    data["units"][layer["id"]]["weight_shape"] = list(spec["weight"].shape)
            data["unitData"][image][layer["id"]] = {
                "x": _b64(call.x), "x_shape": list(call.x.shape), "out": _b64(call.out),
                "out_shape": list(call.out.shape),
                # each step reads the output before it (the chain is linked by tensor identity): only outputs travel
                "then": [{"layer": c.name, "type": type(c.module).__name__, "out": _b64(c.out),
                          "formula": units.page_spec(c.module, c.x, c.out)["formula"]}  # type: ignore[index]
                         for c in chain]}
    for layer in layers["layers"]:
        if layer["filters"] and layer["id"] not in data["filters"]:
            data["filters"][layer["id"]] = explorer.filters(layer["id"], 0, FILTERS_PER_LAYER)
    return data


def write_static(explorer: Explorer, images: Sequence[str | Path], out: str | Path) -> Path:
    """Write the self-contained page for ``images`` (image files, read by the one image-to-input path) to ``out``;
    written whole or not at all."""
    if not images:
        raise ValueError("--static needs at least one --image FILE")
    pictures = []
    for number, file in enumerate(images):
        x = input_from_file(file, explorer.subject.prep)[None]  # an unreadable file: OSError naming it
        pictures.append(Picture(f"image-{number}", Path(file).name, x))
    explorer.pictures = {p.id: p for p in pictures}
    explorer._passes.clear()  # passes of earlier images under the same ids must not be reused
    explorer._outputs.clear()
    # no "<" inside the script element: a file or class name cannot end it or open a comment
    data = json.dumps(page_data(explorer), separators=(",", ":")).replace("<", "\\u003c")
    html = page().replace("const CNNKIT_STATIC = null;", f"const CNNKIT_STATIC = {data};")
    path = Path(out)
    atomic_write(path, html.encode("utf-8"))
    return path
