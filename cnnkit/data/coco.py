"""Detection data in COCO format: ``coco:PATH`` reads it (through ``pycocotools``), :func:`save_coco` writes it.

The layout, the one the COCO dataset and most detection tools use::

    PATH/annotations.json     {"images": [{"id", "file_name", "width", "height"}],
                               "annotations": [{"id", "image_id", "category_id", "bbox": [x, y, w, h],
                                                "segmentation": polygons or RLE, "area", "iscrowd"}],
                               "categories": [{"id", "name"}]}
    PATH/images/...           the image files (file_name is relative to PATH or to PATH/images)

or the same inside ``PATH/train/`` and ``PATH/test/`` (and/or ``PATH/val/``) for given splits; a single set is
split 80/20 by cnnkit (stratified by each image's largest object). Boxes are in pixels with the origin at the
top-left corner of the top-left pixel, ``[x, y, width, height]``, as in COCO. Images are resized (stretched) to
``image_size`` (default: their own size when they all share one), and boxes and masks with them. ``iscrowd``
annotations (a crowd of objects under one region) are not training targets and are left out.

Every annotation is checked before anything is decoded: a box outside its image or of non-positive size, an
unknown ``category_id`` or ``image_id``, a missing image file, a malformed file: the message names the
annotation's id or the file. A folder is decoded once into a pack (its objects beside its images) and read from
it later, as image folders are; large ones are decoded by worker processes (:mod:`cnnkit.data.decoding`).
"""

from __future__ import annotations

import contextlib
import io
import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from cnnkit.data.dataset import DataSplits, ImageDataset
from cnnkit.data.decoding import Decoded, Item, Unreadable, decode_into, read_image
from cnnkit.fileio import read_json, write_json

if TYPE_CHECKING:
    from cnnkit.data.packed import SplitWriter

ANNOTATIONS = "annotations.json"
SPLITS = ("train", "val", "test")
EDGE_TOLERANCE = 1.0  # pixels a box may pass its image's edge (rounding in other tools' exports)


def is_coco_folder(path: Path) -> bool:
    """Whether ``path`` holds COCO annotations, as one set or as splits."""
    return (path / ANNOTATIONS).is_file() or (path / "train" / ANNOTATIONS).is_file()


def _fail(file: Path, what: str) -> ValueError:
    return ValueError(f"{file}: {what}")


def _check(values: Any, file: Path) -> tuple[dict[int, str], list[dict[str, Any]], dict[int, list[dict[str, Any]]]]:
    """The categories (id -> name), the images and each image's annotations, every field checked."""
    if not isinstance(values, dict) or not all(isinstance(values.get(k), list) for k in ("images", "annotations",
                                                                                             "categories")):
        raise _fail(file, "COCO annotations need the lists `images`, `annotations` and `categories`")
    categories: dict[int, str] = {}
    for category in values["categories"]:
        if not isinstance(category, dict) or not isinstance(category.get("id"), int) or \
                not isinstance(category.get("name"), str) or not category["name"].strip():
            raise _fail(file, f"a category needs an integer `id` and a `name`. Received: {category!r:.80}")
        categories[category["id"]] = category["name"]
    if not categories:
        raise _fail(file, "no categories")
    images: dict[int, dict[str, Any]] = {}
    for image in values["images"]:
        ok = isinstance(image, dict) and isinstance(image.get("id"), int) and isinstance(image.get("file_name"), str)
        ok = ok and all(isinstance(image.get(k), int) and image[k] > 0 for k in ("width", "height"))
        if not ok:
            raise _fail(file, f"an image needs an integer `id`, a `file_name` and positive `width` and `height`. "
                              f"Received: {image!r:.100}")
        if image["id"] in images:
            raise _fail(file, f"image id {image['id']} appears twice")
        images[image["id"]] = image
    objects: dict[int, list[dict[str, Any]]] = {key: [] for key in images}
    for annotation in values["annotations"]:
        if not isinstance(annotation, dict) or not isinstance(annotation.get("id"), int):
            raise _fail(file, f"an annotation needs an integer `id`. Received: {annotation!r:.80}")
        where = f"annotation {annotation['id']}"
        image = images.get(annotation.get("image_id"))  # type: ignore[arg-type]
        if image is None:
            raise _fail(file, f"{where}: image_id {annotation.get('image_id')!r} is not among the images")
        if annotation.get("category_id") not in categories:
            raise _fail(file, f"{where}: category_id {annotation.get('category_id')!r} is not among the categories "
                              f"{sorted(categories)}")
        box = annotation.get("bbox")
        if not (isinstance(box, list) and len(box) == 4 and all(isinstance(v, int | float) and math.isfinite(v)
                                                                  for v in box)):
            raise _fail(file, f"{where}: `bbox` must be [x, y, width, height]. Received: {box!r:.80}")
        x, y, w, h = box
        if w <= 0 or h <= 0:
            raise _fail(file, f"{where}: the box has non-positive width or height. Received: bbox={box}")
        if x < -EDGE_TOLERANCE or y < -EDGE_TOLERANCE or x + w > image["width"] + EDGE_TOLERANCE or \
                y + h > image["height"] + EDGE_TOLERANCE:
            raise _fail(file, f"{where}: the box [x, y, w, h] = {box} lies outside its image "
                              f"{image['file_name']!r} of {image['width']}x{image['height']} pixels")
        if annotation.get("iscrowd", 0) not in (0, 1):
            raise _fail(file, f"{where}: `iscrowd` must be 0 or 1. Received: {annotation.get('iscrowd')!r}")
        objects[image["id"]].append(annotation)
    return categories, list(images.values()), objects


def _image_file(root: Path, name: str, annotations: Path) -> Path:
    relative = Path(name)
    if relative.is_absolute() or ".." in relative.parts:
        raise _fail(annotations, f"file_name {name!r} must be a path inside {root}")
    for candidate in (root / relative, root / "images" / relative):
        if candidate.is_file():
            return candidate
    raise _fail(annotations, f"image file {name!r} is missing (looked in {root} and {root / 'images'})")


@dataclass
class _Set:
    """One COCO set, checked, before decoding: its annotation file, folder, images and their objects."""

    file: Path
    root: Path
    values: dict[str, Any]
    categories: dict[int, str]
    images: list[dict[str, Any]]
    paths: list[Path]  # each image's file, found
    objects: dict[int, list[dict[str, Any]]]


def _read_annotations(root: Path, categories: dict[int, str] | None) -> _Set:
    """``root/annotations.json`` read and checked (:func:`_check`), every image file found; its categories (id ->
    name) must be ``categories`` where given (the training split's)."""
    file = root / ANNOTATIONS
    values = read_json(file)
    own, images, objects = _check(values, file)
    if categories is not None and own != categories:
        raise _fail(file, f"its categories {dict(sorted(own.items()))} differ from the training split's "
                          f"{dict(sorted(categories.items()))} (id: name)")
    if not images:
        raise _fail(file, "no images")
    paths = [_image_file(root, image["file_name"], file) for image in images]  # all there before any is decoded
    return _Set(file, root, values, own, images, paths, objects)


def _read_image(job: tuple[Path, str], size: tuple[int, int]) -> Item:
    """One COCO image file, stretched to ``size``; a failure names the image's id (``job``: the file, and which
    image of which annotation file it is)."""
    path, which = job
    try:
        return read_image(path, size, "stretch")
    except Unreadable as error:
        raise Unreadable(replace(error.failure, reason=f"{error.failure.reason} ({which})")) from None


def _objects(found: _Set, image: dict[str, Any], coco: Any, index: dict[int, int], size: tuple[int, int],
             most: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One image's objects (crowds left out), scaled to ``size``: boxes ``(most, 4) float32``, classes ``(most,)
    int64`` (-1 in unused slots) and masks ``(most, H, W) bool`` (polygons or RLE, else the box)."""
    h, w = size
    boxes = np.zeros((most, 4), dtype=np.float32)
    classes = np.full(most, -1, dtype=np.int64)
    masks = np.zeros((most, h, w), dtype=bool)
    sx, sy = w / image["width"], h / image["height"]
    rows = np.minimum((np.arange(h) + 0.5) / sy, image["height"] - 1).astype(int)  # nearest pixel centres
    cols = np.minimum((np.arange(w) + 0.5) / sx, image["width"] - 1).astype(int)
    kept = [a for a in found.objects[image["id"]] if not a.get("iscrowd", 0)]
    for slot, annotation in enumerate(kept):
        x, y, bw, bh = annotation["bbox"]
        boxes[slot] = (max(x, 0) * sx, max(y, 0) * sy, min(x + bw, image["width"]) * sx,
                       min(y + bh, image["height"]) * sy)
        classes[slot] = index[annotation["category_id"]]
        if annotation.get("segmentation"):
            try:
                full = coco.annToMask(annotation)  # polygons or RLE -> (height, width) uint8
            except Exception as error:  # pycocotools' own errors for malformed polygons or RLE
                raise _fail(found.file, f"annotation {annotation['id']}: `segmentation` cannot be read "
                                        f"({type(error).__name__}: {error})") from None
        else:
            full = np.zeros((image["height"], image["width"]), np.uint8)
            full[max(int(y), 0):math.ceil(y + bh), max(int(x), 0):math.ceil(x + bw)] = 1
        masks[slot] = full[rows][:, cols].astype(bool)
    return boxes, classes, masks


def _decode_set(found: _Set, ids: list[int], size: tuple[int, int], skip_bad_images: bool,
                writer: SplitWriter) -> None:
    """Decode one checked set a batch at a time into ``writer``: images, and their objects as the arrays
    ``object_boxes``, ``object_classes`` and ``object_masks``; each image's label is its largest object's class."""
    from pycocotools.coco import COCO

    coco = COCO()
    coco.dataset = found.values
    with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints its progress
        coco.createIndex()
    index = {category: i for i, category in enumerate(ids)}
    most = max(1, max(sum(not a.get("iscrowd", 0) for a in each) for each in found.objects.values()))
    jobs = [(path, f"image id {image['id']} of {found.file}") for path, image in zip(found.paths, found.images,
                                                                                    strict=True)]

    def annotate(kept: list[int], batch: Decoded) -> tuple[list[int], dict[str, np.ndarray]]:
        parts = []
        for i, own in zip(kept, batch.sizes, strict=True):
            image = found.images[i]
            if own != (image["width"], image["height"]):
                raise _fail(found.file, f"image {image['id']} ({image['file_name']!r}) is {own[0]}x{own[1]} pixels, "
                                        f"but `width` and `height` say {image['width']}x{image['height']}")
            parts.append(_objects(found, image, coco, index, size, most))
        boxes, classes, masks = (np.stack(column) for column in zip(*parts, strict=True))
        largest = np.take_along_axis(classes, masks.sum((2, 3)).argmax(1)[:, None], 1)[:, 0]
        labels = np.where(largest < 0, 0, largest)  # an image without objects: labelled as the first class
        return labels.tolist(), {"object_boxes": boxes, "object_classes": classes, "object_masks": masks}

    decode_into(writer, jobs, size, skip_bad_images, annotate, f"decoding COCO images of {found.file}",
                read=_read_image)
    if not writer.count:
        raise _fail(found.file, "no readable image left after skipping bad files")


def _sets(root: Path) -> dict[str, Path]:
    """The folder of each set: ``{"train": root}`` for a single set, else each split's folder."""
    if (root / ANNOTATIONS).is_file():
        return {"train": root}
    if not (root / "train" / ANNOTATIONS).is_file():
        raise FileNotFoundError(f"{root}: no {ANNOTATIONS} (nor train/{ANNOTATIONS}); see `cnnkit data` for the "
                                f"COCO layout, or write one with cnnkit.data.save_coco")
    return {split: root / split for split in SPLITS if (root / split / ANNOTATIONS).is_file()}


def pack_coco(root: Path, size: tuple[int, int] | None, grayscale: bool | None, skip_bad_images: bool, out: Path,
              files: list[list[Any]] | None = None) -> Path:
    """Decode the COCO folder ``root`` (module doc) a batch at a time into the pack ``out``
    (:mod:`cnnkit.data.packed`); a single set is held out 80/20 when the pack is read (by the reader's seed).
    ``size``: None for the images' own size, which they must then share."""
    from cnnkit.data import packed

    folders = _sets(root)
    found = {"train": _read_annotations(folders["train"], None)}  # its categories fix the class ids
    ids = sorted(found["train"].categories)
    found |= {split: _read_annotations(folder, found["train"].categories) for split, folder in folders.items()
              if split != "train"}
    if size is None:
        sizes = {(image["height"], image["width"]) for image in found["train"].images}
        if len(sizes) > 1:
            raise _fail(found["train"].file, f"the images have {len(sizes)} different sizes; give --image-size to "
                                             f"resize them all")
        size = sizes.pop()
    label = root.name or "coco"
    names = tuple(found["train"].categories[c] for c in ids)
    with packed.PackWriter(out, root, size, grayscale, skip_bad_images, files, fit="stretch") as writer:
        for split, each in found.items():
            _decode_set(each, ids, size, skip_bad_images, writer.split(split, f"{label}/{split}", str(each.root), names))
        single = folders["train"] == root  # one set, not given splits (which may be train/ alone)
        writer.finish(test_official="test" in found, test_split=0.2 if single else 0.0)
    return out


def load_coco(path: str | Path, image_size: tuple[int, int] | None = None, grayscale: bool | None = None,
              seed: int = 0, skip_bad_images: bool = False) -> DataSplits:
    """The COCO folder at ``path`` as detection splits (module doc): given ``train``/``val``/``test``, or one set
    split 80/20 by ``seed`` (when read: one pack serves every seed). Packed into the cache the first time and read
    from the pack later, as image folders are (:func:`cnnkit.data.packed.load_cached`). ``skip_bad_images``: leave
    out image files that do not decode (recorded in ``skipped``) instead of failing."""
    from cnnkit.data import packed

    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"COCO folder {str(root)!r} does not exist. Received: coco:{path}")
    _sets(root)  # no annotations: said now, before the cache is looked at
    key = packed.cache_key(root, image_size, grayscale, skip_bad_images, "coco")
    return packed.load_cached(root, key, lambda out, files: pack_coco(root, image_size, grayscale, skip_bad_images,
                                                                      out, files), seed)


def _record(dataset: ImageDataset, folder: Path) -> dict[str, Any]:
    """Write ``dataset``'s images as PNG files into ``folder/images`` and return its COCO annotations."""
    from pycocotools import mask as mask_utils

    from cnnkit.images import write_png

    if dataset.object_boxes is None or dataset.object_classes is None:
        raise ValueError(f"dataset {dataset.name!r} has no objects (boxes and classes) to write as COCO annotations; "
                         f"use a detection dataset such as shapes-det")
    (folder / "images").mkdir(parents=True, exist_ok=True)
    _, channels, h, w = dataset.images.shape
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for i in range(len(dataset)):
        name = f"{i:06d}.png"
        array = dataset.images[i].permute(1, 2, 0).numpy()
        write_png(folder / "images" / name, array[:, :, 0] if channels == 1 else array)
        images.append({"id": i + 1, "file_name": name, "width": w, "height": h})
        for slot in range(dataset.object_classes.shape[1]):
            category = int(dataset.object_classes[i, slot])
            if category < 0:
                continue
            x0, y0, x1, y1 = (float(v) for v in dataset.object_boxes[i, slot])
            record: dict[str, Any] = {"id": len(annotations) + 1, "image_id": i + 1, "category_id": category + 1,
                                      "bbox": [x0, y0, x1 - x0, y1 - y0], "area": (x1 - x0) * (y1 - y0),
                                      "iscrowd": 0}
            if dataset.object_masks is not None:
                rle = mask_utils.encode(np.asfortranarray(dataset.object_masks[i, slot].numpy().astype(np.uint8)))
                record["segmentation"] = {"size": rle["size"], "counts": rle["counts"].decode("ascii")}
                record["area"] = float(mask_utils.area(rle))
            annotations.append(record)
    categories = [{"id": k + 1, "name": name} for k, name in enumerate(dataset.class_names)]
    return {"images": images, "annotations": annotations, "categories": categories}


def save_coco(data: ImageDataset | DataSplits, folder: str | Path) -> Path:
    """Write a detection dataset (or each split of one: ``folder/train``, ``folder/test``, ``folder/val``) in COCO
    format (module doc), the masks as RLE. ``load("coco:" + folder)`` reads it back. Returns ``folder``."""
    root = Path(folder)
    if root.exists() and any(root.iterdir()):
        raise ValueError(f"{root}: the folder exists and is not empty; choose a new one")
    parts = {"": data} if isinstance(data, ImageDataset) else {
        split: part for split, part in (("train", data.train), ("val", data.val), ("test", data.test))
        if part is not None}
    for split, dataset in parts.items():
        write_json(root / split / ANNOTATIONS, _record(dataset, root / split))
    return root
