"""Packed image folders: decoded once into fixed-size arrays on disk (uint8 images), read back without decoding.

``cnnkit data pack folder:PATH --image-size 128 --out photos.cnnkit`` (or
:func:`pack`) decodes an image folder once, through the same code as
``folder:`` (:func:`cnnkit.data.folder.load_folder`: EXIF, crop, resize,
channels; :mod:`cnnkit.data.pairs` for images/ + masks/, :mod:`cnnkit.data.coco`
for ``coco:PATH``), and writes::

    photos.cnnkit/manifest.json        what was packed: the source folder, the classes, the image shape, how images
                                       were fitted, the splits with their files and arrays, the files left out
    photos.cnnkit/source.json          every file of the source folder: path, size and mtime (to notice changes)
    photos.cnnkit/train.images         N x C x H x W uint8, one image after the other (and test/val alike)
    photos.cnnkit/train.labels.npy     N int64 (numpy's own format, read with allow_pickle=False)
    photos.cnnkit/train.segmentation   N x H x W uint8 class ids (a segmentation folder)
    photos.cnnkit/train.object_boxes   N x M x 4 float32, .object_classes N x M int64, .object_masks N x M x H x W
                                       bool (a COCO folder: up to M objects per image)

A single COCO set is held out 80/20 when the pack is read, by the reader's seed
(``test_split`` in the manifest), as ``coco:`` always held it out.

``packed:photos.cnnkit`` trains from it like any dataset. Its images are a
``numpy.memmap`` of the file seen as a torch tensor: nothing is read until a
batch gathers its images, so a pack larger than memory trains too (the
operating system keeps what fits in its page cache), and each process of a
distributed run reads only the images of its own shard. A part cut from such a
pack (``--val-split``, ``--classes``, ``--train-per-class``) is copied into an
unlinked file beside it and mapped in turn (:func:`gather`), not gathered into
memory (but for parts under 16 MB, or with a warning where nothing can be
written beside the pack).

Why raw arrays and not WebDataset tar shards: cnnkit shuffles every epoch,
which wants random access to any image; with fixed-size decoded images that is
one offset, no index, no decoding (decoding JPEGs is the expensive part on a
CPU). Tar shards suit sequential streaming from object stores, which cnnkit
does not do.

A folder used with ``folder:PATH`` or ``coco:PATH`` is packed automatically into the cache
(``$CNNKIT_CACHE/packed``, :func:`load_cached`) the first time, and every later run that asks for
the same size and channels reads the pack instead of decoding. The manifest's
file list (paths, sizes, modification times) is compared with the folder each
time: a changed, added or removed file makes the pack stale, and the folder is
decoded again, never a stale pack used.
"""

from __future__ import annotations

import contextlib
import glob
import hashlib
import json
import os
import shutil
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np
import torch

from cnnkit.data.dataset import TEST_STREAM, DataSplits, ImageDataset, split_off
from cnnkit.images import Fit

FORMAT = "cnnkit-pack"
VERSION = 3  # 3: what segmentation and COCO folders pack (arrays, fit, test_split); a version-2 pack reads as written
_READABLE = (2, 3)
MANIFEST = "manifest.json"
SOURCE = "source.json"  # the source folder's listing: read only to see whether the pack is stale
_SPLITS = ("train", "val", "test")


LINKS_FOLLOWED = 2  # folder depth to which linked folders are followed: class folders, train/, images/, masks/


def listing(root: Path) -> list[list[Any]]:
    """Every file below ``root`` as ``[relative path, size, mtime_ns]``, sorted: what a pack records of its
    source, and what is compared to see whether the folder changed (``os.scandir``: one ``stat`` per file,
    100,000 files in about 0.6 s here).

    Hidden files are left out, as decoding leaves them. A folder that is a symbolic link is an entry of its own
    (``path/``, 0, the link's own mtime: a link added, removed or pointed elsewhere is a change) and is followed
    where the layouts' readers follow one: a linked class folder, ``train/``, ``images/`` or ``masks/``, up to
    :data:`LINKS_FOLLOWED` folders deep (so no cycle of links is walked forever). A folder that cannot be read,
    or a dangling link, is an entry with size -1.
    """
    found: list[list[Any]] = []
    base = len(os.path.join(str(root), ""))
    folders = [(str(root), 0)]
    while folders:
        folder, depth = folders.pop()
        try:
            entries = list(os.scandir(folder))
        except OSError:  # unreadable: said by the reader that needs it, if one does
            found.append([folder[base:].replace(os.sep, "/") + "/", -1, 0])
            continue
        for entry in entries:
            if entry.name.startswith("."):
                continue
            relative = entry.path[base:].replace(os.sep, "/")
            try:
                if entry.is_symlink() and entry.is_dir():
                    found.append([relative + "/", 0, entry.stat(follow_symlinks=False).st_mtime_ns])
                    if depth < LINKS_FOLLOWED:
                        folders.append((entry.path, depth + 1))
                    continue
                if entry.is_dir():
                    folders.append((entry.path, depth + 1))
                    continue
                info = entry.stat()  # through a link to a file, its target's
            except OSError:  # a dangling link, or one that cannot be followed
                found.append([relative, -1, 0])
                continue
            found.append([relative, info.st_size, info.st_mtime_ns])
    found.sort()
    return found


def cache_key(root: Path, size: tuple[int, int] | None, grayscale: bool | None, skip_bad_images: bool,
              layout: str = "") -> str:
    """What names the automatic pack of the folder ``root``: everything that decides the values decoded
    (``size``: None for the images' own; ``layout``: "" for class folders, "pairs", "coco")."""
    text = f"{root.resolve()}\0{size}\0{grayscale}\0{skip_bad_images}\0{VERSION}" + (f"\0{layout}" if layout else "")
    return hashlib.sha256(text.encode()).hexdigest()[:24]


def cache_path(root: Path, key: str) -> Path | None:
    """Where the automatic pack of ``root`` named ``key`` (:func:`cache_key`) lives, or None (``CNNKIT_CACHE=off``)."""
    from cnnkit.data.idx import cache_folder

    folder = cache_folder()
    return None if folder is None else folder / "packed" / f"{root.name}.{key}"


@contextlib.contextmanager
def cache_lock(pack: Path) -> Iterator[None]:
    """Hold ``PACK.lock`` beside the cached pack ``pack`` (``fcntl.flock``) for the ``with`` block.

    Processes that read the same folder at once (the ranks of a ``torchrun``, two terminals) then pack it once:
    the first packs, the others wait (and say so), then find the pack current and read it. Where no lock can be
    taken (no ``fcntl``, a read-only cache, a file system without locks) the block runs without one, as before.
    """
    try:
        import fcntl

        pack.parent.mkdir(parents=True, exist_ok=True)
        handle = (pack.parent / f"{pack.name}.lock").open("a")
    except (ImportError, OSError):
        handle = None
    if handle is None:
        yield
        return
    with handle:
        try:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                print(f"another process is packing this folder into {pack}; waiting for it", file=sys.stderr,
                      flush=True)
                fcntl.flock(handle, fcntl.LOCK_EX)
            locked = True
        except OSError:
            locked = False
        try:
            yield
        finally:
            if locked:
                fcntl.flock(handle, fcntl.LOCK_UN)


ARRAY_FIELDS = {"segmentation": "uint8", "object_boxes": "float32", "object_classes": "int64", "object_masks": "bool"}
"""The per-image arrays a pack may hold beside its images (:class:`~cnnkit.data.dataset.ImageDataset`'s fields), with
their dtypes: the class per pixel of a segmentation folder, the objects of a COCO folder."""


class SplitWriter:
    """One split being packed: decoded RGB chunks appended to a file, with labels, files, grey flags and any
    per-image arrays (:data:`ARRAY_FIELDS`), each appended to a file of its own."""

    def __init__(self, work: Path, split: str, name: str, source: str) -> None:
        self.work, self.split, self.name, self.source = work, split, name, source
        self.path = work / f"{split}.rgb"
        self.file = self.path.open("wb")
        self.count, self.all_grey = 0, True
        self.labels: list[int] = []
        self.files: list[str] = []
        self.skipped: list[str] = []
        self.arrays: dict[str, tuple[BinaryIO, list[int]]] = {}  # field -> (its file, one image's shape)

    def add(self, rgb: torch.Tensor, greys: list[bool], labels: list[int], files: list[str],
            arrays: dict[str, np.ndarray] | None = None) -> None:
        """``rgb``: ``(n, 3, H, W)`` uint8, one chunk of decoded images; ``greys``: whether each was stored grey;
        ``arrays``: per-image arrays of the chunk, ``(n, ...)``, by field (:data:`ARRAY_FIELDS`)."""
        self.file.write(rgb.contiguous().numpy().tobytes())
        for field, array in (arrays or {}).items():
            if field not in self.arrays:
                self.arrays[field] = ((self.work / f"{self.split}.{field}").open("wb"), list(array.shape[1:]))
            file, shape = self.arrays[field]
            if array.shape != (rgb.shape[0], *shape) or array.dtype != np.dtype(ARRAY_FIELDS[field]):
                raise ValueError(f"{field}: {array.shape} {array.dtype} for {rgb.shape[0]} images of "
                                 f"{shape} {ARRAY_FIELDS[field]}")  # a bug of the layout's reader, not of the files
            file.write(np.ascontiguousarray(array).tobytes())
        self.count += int(rgb.shape[0])
        self.all_grey &= all(greys)
        self.labels += labels
        self.files += files

    def close(self) -> None:
        self.file.close()
        for file, _ in self.arrays.values():
            file.close()


class PackWriter:
    """Writes a pack (module doc) split by split and chunk by chunk, into a temporary folder beside ``out`` that
    becomes ``out`` only when whole (:meth:`finish`); a failure leaves nothing. A context manager."""

    def __init__(self, out: Path, source: Path, image_size: tuple[int, int], grayscale: bool | None,
                 skip_bad_images: bool, files: list[list[Any]] | None = None, fit: Fit = "crop") -> None:
        if out.exists() and not (out / MANIFEST).is_file():
            raise ValueError(f"--out {out}: exists and is not a pack (no {MANIFEST}); choose a new name")
        self.out, self.source, self.image_size, self.fit = out, source, image_size, fit
        self.grayscale, self.skip_bad_images = grayscale, skip_bad_images
        self.listing = listing(source) if files is None else files  # before decoding: a file changed meanwhile
        out.parent.mkdir(parents=True, exist_ok=True)                 # makes the pack stale, never wrongly current
        self.work = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
        self.splits: dict[str, SplitWriter] = {}
        self.class_names: tuple[str, ...] = ()

    def __enter__(self) -> PackWriter:
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        for writer in self.splits.values():
            writer.close()
        shutil.rmtree(self.work, ignore_errors=True)  # after finish() it holds nothing any more

    def split(self, split: str, name: str, source: str, class_names: tuple[str, ...] = ()) -> SplitWriter:
        """A new split to write; ``class_names`` where they are known before decoding (else given to finish)."""
        self.class_names = class_names or self.class_names
        self.splits[split] = SplitWriter(self.work, split, name, source)
        return self.splits[split]

    def finish(self, test_official: bool, class_names: tuple[str, ...] | None = None,
               test_split: float = 0.0) -> None:
        """Decide the channels (grey when asked, or when every image of every split was stored grey), write each
        split's images in them with its labels, arrays and the manifest, and put the pack in place.

        ``class_names``: where only decoding tells them (a segmentation folder's largest class id);
        ``test_split``: the fraction of a single set that reading the pack holds out as its test split (by the
        reader's seed, :func:`load_packed`), as ``coco:`` does."""
        for writer in self.splits.values():
            writer.close()
        if class_names is not None:
            self.class_names = class_names
        grey = all(w.all_grey for w in self.splits.values()) if self.grayscale is None else self.grayscale
        manifest: dict[str, Any] = {
            "format": FORMAT, "version": VERSION, "source": str(self.source.resolve()),
            "image_size": list(self.image_size), "grayscale": self.grayscale, "skip_bad_images": self.skip_bad_images,
            "class_names": list(self.class_names), "input_shape": [1 if grey else 3, *self.image_size],
            "fit": self.fit, "test_official": test_official, "test_split": test_split,
            "skipped": [s for w in self.splits.values() for s in w.skipped], "splits": {}}
        for split, writer in self.splits.items():
            target = self.work / f"{split}.images"
            if grey:
                _to_grey(writer.path, target, writer.count, self.image_size)
                writer.path.unlink()
            else:
                writer.path.rename(target)
            np.save(self.work / f"{split}.labels.npy", np.array(writer.labels, dtype=np.int64), allow_pickle=False)
            manifest["splits"][split] = {"count": writer.count, "files": writer.files, "name": writer.name,
                                         "source": writer.source, "skipped": writer.skipped,
                                         "arrays": {field: shape for field, (_, shape) in writer.arrays.items()}}
        (self.work / SOURCE).write_text(json.dumps({"source": manifest["source"], "files": self.listing}),
                                        encoding="utf-8")
        (self.work / MANIFEST).write_text(json.dumps(manifest), encoding="utf-8")
        readable = (self.work / MANIFEST).stat().st_mode & 0o666  # what this process's umask gives a new file
        self.work.chmod(readable | (readable & 0o444) >> 2)  # the folder as mkdir would make it (mkdtemp: private)
        if self.out.exists():
            shutil.rmtree(self.out)
        self.work.rename(self.out)


def _to_grey(rgb: Path, grey: Path, count: int, size: tuple[int, int]) -> None:
    """An RGB images file -> one channel, a chunk at a time (ITU-R 601 luma, which is a grey-stored image's own
    level: the decoded folder's rule, :func:`cnnkit.images.to_channels`)."""
    from cnnkit.data.convert import to_grayscale

    per_image = 3 * size[0] * size[1]
    with rgb.open("rb") as source, grey.open("wb") as target:
        for start in range(0, count, 4096):
            n = min(4096, count - start)
            chunk = np.frombuffer(source.read(n * per_image), dtype=np.uint8).reshape(n, 3, *size)
            target.write(to_grayscale(torch.from_numpy(chunk.copy())).numpy().tobytes())


def read_manifest(folder: Path) -> dict[str, Any]:
    """The pack's manifest, checked; a folder that is not a pack (or a damaged one) is a ValueError naming it."""
    path = folder / MANIFEST
    if not path.is_file():
        raise ValueError(f"packed:{folder}: not a pack (no {MANIFEST}); make one with `cnnkit data pack "
                         f"folder:PATH --out {folder}`")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise ValueError(f"{path}: not a readable manifest ({error}); pack the folder again") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT or manifest.get("version") not in _READABLE:
        raise ValueError(f"{path}: not a cnnkit pack of version {' or '.join(map(str, _READABLE))}; pack the folder "
                         f"again")
    return manifest


def current_manifest(folder: Path, source: Path | None = None,
                     files: list[list[Any]] | None = None) -> dict[str, Any] | None:
    """The manifest of the pack in ``folder`` if the pack still holds what its source folder (or ``source``, whose
    :func:`listing` is ``files`` when given) holds now; None when it is stale, missing or damaged."""
    try:
        manifest = read_manifest(folder)
        recorded = json.loads((folder / SOURCE).read_text(encoding="utf-8"))
        root = Path(source or manifest["source"])
        current = root.is_dir() and (listing(root) if files is None else files) == recorded["files"]
    except (ValueError, OSError, KeyError, TypeError):
        return None
    return manifest if current else None


def _array(path: Path, count: int, shape: tuple[int, ...], dtype: str, in_memory: bool, what: str) -> torch.Tensor:
    """``count`` arrays of ``shape`` and ``dtype`` from the raw file ``path``, read whole or mapped; a file of
    another size is a ValueError naming it."""
    expected = count * int(np.prod(shape)) * np.dtype(dtype).itemsize
    if not path.is_file() or path.stat().st_size != expected:
        got = path.stat().st_size if path.is_file() else "no file"
        raise ValueError(f"{path}: {got} bytes where the manifest says {count} {what} of {'x'.join(map(str, shape))} {dtype} "
                         f"({expected} bytes): the pack is truncated or damaged; pack the folder again")
    if in_memory or expected == 0:  # (an empty file cannot be mapped)
        values = np.fromfile(path, dtype=dtype).reshape(count, *shape)
    else:  # copy-on-write: pages are read when a batch touches them and never written back
        values = np.memmap(path, dtype=dtype, mode="c", shape=(count, *shape))
    return torch.from_numpy(values)


def _split(folder: Path, split: str, manifest: dict[str, Any], in_memory: bool, as_decoded: bool) -> ImageDataset:
    info = manifest["splits"][split]
    count, shape = int(info["count"]), tuple(int(s) for s in manifest["input_shape"])
    path = folder / f"{split}.images"
    images = _array(path, count, shape, "uint8", in_memory, "images")
    arrays = {}
    for field, each in info.get("arrays", {}).items():
        if field not in ARRAY_FIELDS:
            raise ValueError(f"{folder / MANIFEST}: unknown array {field!r}; pack the folder again")
        arrays[field] = _array(folder / f"{split}.{field}", count, tuple(int(s) for s in each), ARRAY_FIELDS[field],
                               in_memory, f"{field} arrays")
    try:
        labels = np.load(folder / f"{split}.labels.npy", allow_pickle=False)
    except (OSError, ValueError) as error:
        raise ValueError(f"{folder / f'{split}.labels.npy'}: unreadable ({error}); pack the folder again") from None
    if labels.shape != (count,) or labels.dtype != np.int64:
        raise ValueError(f"{folder / f'{split}.labels.npy'}: {labels.shape} {labels.dtype}, not {count} int64 labels")
    name, source = (str(info["name"]), str(info["source"])) if as_decoded else (f"packed/{split}", str(folder))
    return ImageDataset(images, torch.from_numpy(labels), tuple(manifest["class_names"]), name, source,
                        files=tuple(info["files"]) or None, skipped=tuple(info.get("skipped", ())),
                        fit=manifest.get("fit", "crop"), mapped=None if in_memory else str(path), **arrays)


SUBSET_IN_MEMORY_BYTES = 16 << 20  # a part of a mapped pack smaller than this is simply gathered into memory
SPILL_CHUNK_BYTES = 2 << 20  # what spill computes and writes at a time: small blocks, so that the heap they
# come from is reused rather than grown (16 MB blocks left about as much heap behind as the data spilled)


def spill(rows: int, shape: tuple[int, ...], dtype: torch.dtype, fill: Callable[[int, int], torch.Tensor],
          beside: Path, what: str) -> torch.Tensor:
    """A ``(rows, *shape)`` tensor of ``dtype`` made from a memory-mapped pack without holding it in memory: rows
    ``start:stop`` are ``fill(start, stop)``, computed 2 MB at a time into an anonymous file beside the pack (in
    the folder ``beside``; created unlinked, so it is gone with the process, whatever happens), which is then
    mapped.

    A result smaller than :data:`SUBSET_IN_MEMORY_BYTES` is simply made in memory; so is a larger one where no
    file can be written beside the pack (read-only, full), with a warning that says how much of ``what`` and why.
    (Not the temporary folder instead: it is often in memory itself.)
    """
    like = torch.empty((), dtype=dtype)
    row = int(np.prod(shape)) * like.element_size()
    size = rows * row

    def rows_of(start: int, stop: int) -> torch.Tensor:
        values = fill(start, stop)
        if values.dtype != dtype or tuple(values.shape) != (stop - start, *shape):  # a caller's bug, not the data's
            raise TypeError(f"spill: fill({start}, {stop}) gave {values.dtype} {tuple(values.shape)}, not {dtype} "
                            f"{(stop - start, *shape)}")
        return values

    def held(error: OSError) -> torch.Tensor:
        warnings.warn(f"{beside}: cannot write {size / 1e6:,.0f} MB of {what} beside this pack ({error}); holding "
                      f"them in memory instead", UserWarning, stacklevel=4)
        return rows_of(0, rows)

    if size == 0 or size < SUBSET_IN_MEMORY_BYTES:
        return rows_of(0, rows)
    try:
        handle = tempfile.TemporaryFile(dir=beside, prefix=".cnnkit-subset-")  # noqa: SIM115 (closed below)
    except OSError as error:
        return held(error)
    with handle:  # the map keeps the file open past this block
        step = max(1, SPILL_CHUNK_BYTES // max(row, 1))
        for start in range(0, rows, step):
            chunk = rows_of(start, min(start + step, rows)).contiguous()  # a read error is raised, not held
            try:
                handle.write(chunk.numpy().data)  # the tensor's own bytes (a memoryview), no copy
            except OSError as error:
                return held(error)
        try:
            handle.flush()
            kept = np.memmap(handle, dtype=like.numpy().dtype, mode="c", shape=(rows, *shape))
        except OSError as error:
            return held(error)
    return torch.from_numpy(kept)


def gather(values: torch.Tensor, index: torch.Tensor, beside: Path, what: str = "images") -> torch.Tensor:
    """``values[index]`` for per-image arrays memory-mapped from a pack in the folder ``beside``, without holding
    them in memory (:func:`spill`).

    What ``--val-split``, ``--classes`` and ``--train-per-class`` cut from a pack larger than memory: its images,
    and its class maps or object masks. ``values``: ``(N, ...)``, ``what`` they are (for a warning); ``index``:
    ``(M,) int64``, negative counting from the end; returns ``(M, ...)`` of ``values``' dtype.
    """
    index = torch.where(index < 0, index + values.shape[0], index)  # as values[index] reads negative indices
    return spill(int(index.shape[0]), tuple(values.shape[1:]), values.dtype,
                 lambda start, stop: values.index_select(0, index[start:stop]), beside, f"{what} cut from it")


def load_packed(folder: str | Path, in_memory: bool | None = None, as_decoded: bool = False,
                manifest: dict[str, Any] | None = None, seed: int = 0) -> DataSplits:
    """The pack in ``folder`` as splits. ``in_memory``: read it whole (True), map it and read batches on demand
    (False), or map it when it is larger than a quarter of this machine's memory (None). ``as_decoded``: the
    datasets keep the names and sources the decoded folder gave them (the automatic cache of ``folder:``).
    ``manifest``: the pack's manifest when the caller has read it already (:func:`current_manifest`). ``seed``:
    of the test split held out of a single set where the pack asks for one (a COCO set, as ``coco:`` reads it)."""
    folder = Path(folder)
    manifest = read_manifest(folder) if manifest is None else manifest
    if in_memory is None:
        size = sum(p.stat().st_size for p in folder.iterdir() if p.name.split(".")[0] in manifest["splits"])
        in_memory = size < _memory() // 4
    splits = {s: _split(folder, s, manifest, in_memory, as_decoded) for s in _SPLITS if s in manifest["splits"]}
    if "train" not in splits:
        raise ValueError(f"packed:{folder}: the pack has no train split")
    train, fraction = splits["train"], float(manifest.get("test_split", 0.0))
    if fraction and "test" not in splits:
        stem = train.name.rsplit("/", 1)[0]
        splits["train"], splits["test"] = split_off(train, fraction, seed, TEST_STREAM, (train.name, f"{stem}/test"))
    return DataSplits(train=splits["train"], test=splits.get("test"), val=splits.get("val"),
                      test_official=bool(manifest.get("test_official")), seed=seed,
                      skipped=tuple(manifest.get("skipped", ())))


def _memory() -> int:
    """This machine's physical memory in bytes (a large default where it cannot be read)."""
    with contextlib.suppress(ValueError, OSError, AttributeError):
        return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))
    return 1 << 40


Packer = Callable[[Path, list[list[Any]]], Path]
"""Decodes a layout's source folder into the pack at the given path, recording the given listing of the folder
(:func:`listing`; empty for a pack that lives for one call), and returns that path."""


def load_cached(root: Path, key: str, pack_into: Packer, seed: int = 0) -> DataSplits:
    """The folder ``root`` decoded by ``pack_into``, through the cache: the pack cached under ``key`` (what
    decides the decoded values: :func:`cache_key`) when it is current, else packed there first (once, however
    many processes ask at once: :func:`cache_lock`) and read. Without a cache (``CNNKIT_CACHE=off``) or where
    nothing can be written, decoded into memory (:func:`load_decoded`)."""
    cached = cache_path(root, key)
    if cached is None:
        return load_decoded(pack_into, seed)
    manifest = current_manifest(cached, root, listing(root))
    if manifest is not None:  # the usual case, read without waiting for anyone
        with contextlib.suppress(ValueError, OSError):  # a damaged pack: decoded again below, and replaced
            return load_packed(cached, as_decoded=True, manifest=manifest, seed=seed)
    with cache_lock(cached):  # processes packing the folder at once (torchrun's ranks) pack it once
        files = listing(root)
        manifest = current_manifest(cached, root, files)  # again: another process may have packed it
        if manifest is not None:
            with contextlib.suppress(ValueError, OSError):
                return load_packed(cached, as_decoded=True, manifest=manifest, seed=seed)
        try:
            pack_into(cached, files)
        except OSError:  # a read-only or full cache: the pack is only a shortcut
            pass
        else:
            _drop_older(cached, root)
            return load_packed(cached, as_decoded=True, seed=seed)
    return load_decoded(pack_into, seed)


def _drop_older(cached: Path, root: Path) -> None:
    """Remove the cache's packs of ``root`` in an older pack format, with their lock files: a cache key holds the
    format's version, so nothing looks them up any more (they would stay forever). Packs at other sizes stay."""
    source = str(root.resolve())
    for other in cached.parent.glob(f"{glob.escape(root.name)}.*"):
        if other == cached or not other.is_dir():
            continue
        try:
            manifest = json.loads((other / MANIFEST).read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict) and manifest.get("format") == FORMAT and manifest.get("source") == source \
                and manifest.get("version") != VERSION:
            shutil.rmtree(other, ignore_errors=True)
            (other.parent / f"{other.name}.lock").unlink(missing_ok=True)


def load_decoded(pack_into: Packer, seed: int = 0) -> DataSplits:
    """Decode into memory, without the cache: packed into a temporary folder by ``pack_into``, then read whole,
    so that in memory and on disk are one decoding."""
    with tempfile.TemporaryDirectory(prefix="cnnkit-decode-") as scratch:
        # a pack that lives for this call only: no listing of the folder to compare later
        out = pack_into(Path(scratch) / "pack", [])
        return load_packed(out, in_memory=True, as_decoded=True, seed=seed)


def pack(name: str, out: str | Path, image_size: int | None = None, grayscale: bool | None = None,
         skip_bad_images: bool = False) -> Path:
    """``cnnkit data pack``: decode ``folder:PATH`` (class folders or images/ + masks/) or ``coco:PATH`` once into
    the pack ``out`` (module doc)."""
    from cnnkit.data.folder import DEFAULT_SIZE

    size = (image_size, image_size) if image_size else None
    kind, _, path = name.partition(":")
    if kind not in ("folder", "coco") or not path:
        raise ValueError(f"cnnkit data pack takes an image folder, folder:PATH (class folders, or images/ and "
                         f"masks/), or a COCO folder, coco:PATH. Received: {name!r}")
    root = Path(path)
    if not root.is_dir():
        raise ValueError(f"{name}: not a folder")
    if kind == "coco":
        from cnnkit.data.coco import pack_coco

        return pack_coco(root, size, grayscale, skip_bad_images, Path(out))
    from cnnkit.data.folder import pack_folder
    from cnnkit.data.pairs import is_pair_folder, pack_pairs

    packer = pack_pairs if is_pair_folder(root) else pack_folder
    return packer(root, size or DEFAULT_SIZE, grayscale, skip_bad_images, Path(out))
