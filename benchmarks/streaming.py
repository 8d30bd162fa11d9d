"""Past memory: packed image folders against decoding every run, and memory against the folder's size.

Generates folders of small JPEG images (``--sizes 10000,100000`` images, 32x32 RGB, 10 classes; made here in a
temporary folder, never committed) and measures, each ``cnnkit train`` a separate process as a user runs it:

1. **time to the first training step** (the run's own ``timings.json``: start-up, data, network, summary,
   optimizer) of ``--data folder:DIR`` with an empty cache (decodes every file and packs them) and again (reads
   the pack): the ratio;
2. **peak memory** of one epoch of ``--data packed:PACK`` (memory-mapped, read on demand), from ``/proc``: the
   peak resident set (``VmHWM``, which counts the pack's pages the kernel maps for the process, reclaimable
   page cache) and the peak anonymous memory (``RssAnon``, the process's own allocations), at each size: the
   ratio between the largest and the smallest;
3. **images/s** of that epoch against the same data held in memory (``folder:`` read from the pack into memory);
4. the peak memory again with ``--val-split 0.1``: the part cut from the mapped pack is copied to a file beside
   it and mapped (``cnnkit.data.packed.gather``), so it too must not grow with the folder.

``--layout pairs`` does the same for a segmentation folder (``images/`` + ``masks/``: JPEG images, PNG masks of
three classes) trained with ``--task segment`` (unet, width 8): its class maps are packed and mapped beside the
images.

    python benchmarks/streaming.py [--sizes 10000,100000] [--model fastnet] [--layout classes|pairs]
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import common
import numpy as np
from PIL import Image


def make_folder(root: Path, count: int, size: int = 32, classes: int = 10) -> None:
    """``count`` JPEGs in ``root/train/CLASS`` (and a tenth more in ``root/test``): each class a coloured blob."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for split, n in (("train", count), ("test", count // 10)):
        for i in range(n):
            label = i % classes
            cy, cx = rng.integers(6, size - 6, 2)
            blob = ((yy - cy) ** 2 + (xx - cx) ** 2 < (4 + label % 4) ** 2)[..., None]
            colour = np.array([(label * 70) % 256, (label * 130) % 256, (label * 40 + 90) % 256])
            pixels = np.where(blob, colour, rng.integers(0, 80, (size, size, 3))).astype(np.uint8)
            path = root / split / f"c{label}" / f"{i}.jpg"
            path.parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(path, quality=90)


def make_pairs(root: Path, count: int, size: int = 32) -> None:
    """``count`` JPEG images with their PNG masks in ``root/train/images`` and ``root/train/masks`` (and a tenth
    more in ``root/test``): blobs of classes 1 and 2 on a noisy background."""
    rng = np.random.default_rng(0)
    yy, xx = np.mgrid[:size, :size]
    for split, n in (("train", count), ("test", count // 10)):
        (root / split / "images").mkdir(parents=True)
        (root / split / "masks").mkdir(parents=True)
        for i in range(n):
            mask = np.zeros((size, size), np.uint8)
            for label in (1, 2):
                cy, cx = rng.integers(6, size - 6, 2)
                mask[(yy - cy) ** 2 + (xx - cx) ** 2 < (3 + 2 * label) ** 2] = label
            colours = np.array([[0, 0, 0], [220, 60, 40], [40, 90, 220]], np.uint8)
            pixels = np.where(mask[..., None] > 0, colours[mask], rng.integers(0, 80, (size, size, 3))).astype(np.uint8)
            Image.fromarray(pixels).save(root / split / "images" / f"{i}.jpg", quality=90)
            Image.fromarray(mask).save(root / split / "masks" / f"{i}.png")


def _status(pid: int) -> dict[str, int]:
    """``VmHWM`` (peak resident set), ``VmRSS`` and ``RssAnon`` of a process, in bytes (Linux ``/proc``)."""
    values = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, rest = line.partition(":")
        if key in ("VmHWM", "VmRSS", "RssAnon"):
            values[key] = int(rest.split()[0]) * 1024
    return values


def train(args: list[str], env: dict[str, str], out: Path) -> dict[str, Any]:
    """One ``cnnkit train`` process: its timings, its epoch's images/s, and its peak memory (``/proc``, 20 Hz)."""
    process = subprocess.Popen([sys.executable, "-m", "cnnkit", "train", *args, "--out", str(out), "--no-report",
                                "--epochs", "1"], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    peak = {"rss": 0, "anonymous": 0}

    def sample() -> None:
        while process.poll() is None:
            try:
                found = _status(process.pid)
            except (OSError, ValueError):
                break
            peak["rss"] = max(peak["rss"], found.get("VmHWM", 0))  # the kernel's own peak
            peak["anonymous"] = max(peak["anonymous"], found.get("RssAnon", 0))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample)
    sampler.start()
    _, err = process.communicate()
    sampler.join()
    if process.returncode != 0:
        raise SystemExit(f"cnnkit train failed: {err[-2000:]}")
    phases = json.loads((out / "timings.json").read_text())["phases"]
    epoch = json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])
    first_step = sum(phases.get(k, 0.0) for k in ("start-up and imports", "data", "network", "summary", "optimizer"))
    return {"first_step_seconds": round(first_step, 2), "data_seconds": phases.get("data"),
            "images_per_second": epoch.get("images_per_second"),
            "peak_rss_mb": round(peak["rss"] / 1e6), "peak_anonymous_mb": round(peak["anonymous"] / 1e6)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="10000,100000")
    parser.add_argument("--model", default=None, help="default: fastnet for classes, unet (width 8) for pairs")
    parser.add_argument("--layout", choices=("classes", "pairs"), default="classes",
                        help="class folders (classification) or images/ + masks/ (segmentation)")
    common.add_common_arguments(parser)
    args = parser.parse_args()
    doc = common.apply_common_arguments(args)
    rows = []
    with tempfile.TemporaryDirectory(prefix="cnnkit-streaming-") as scratch:
        work = Path(scratch)
        for count in (int(s) for s in args.sizes.split(",")):
            folder = work / f"photos-{count}"
            start = time.perf_counter()
            (make_pairs if args.layout == "pairs" else make_folder)(folder, count)
            made = time.perf_counter() - start
            cache = work / f"cache-{count}"
            # CNNKIT_WAIT: each run draws its figures before it ends, so no drawing process of one run competes
            # with the start of the next
            env = {**os.environ, "CNNKIT_CACHE": str(cache), "CNNKIT_WAIT": "1"}
            model = ["--model", args.model or "fastnet"] if args.layout == "classes" else \
                ["--task", "segment", "--model", args.model or "unet", "--model-options", "width=8"]
            run_args = [*model, "--batch-size", "128", "--precision", "fp32"]
            first = train(["--data", f"folder:{folder}", "--image-size", "32", *run_args], env, work / f"first-{count}")
            second = train(["--data", f"folder:{folder}", "--image-size", "32", *run_args], env,
                           work / f"second-{count}")
            pack = next(p for p in (cache / "packed").iterdir() if p.is_dir())
            streamed = train(["--data", f"packed:{pack}", *run_args], env, work / f"streamed-{count}")
            carved = train(["--data", f"packed:{pack}", "--val-split", "0.1", *run_args], env, work / f"carved-{count}")
            row = {"images": count, "folder_seconds_to_make": round(made, 1),
                   "pack_mb": round(sum(p.stat().st_size for p in pack.iterdir()) / 1e6, 1),
                   "first_run": first, "second_run": second, "streamed": streamed, "streamed_val_split": carved,
                   "first_step_speedup": round(first["first_step_seconds"] / second["first_step_seconds"], 1),
                   "streamed_over_in_memory_images_per_second":
                       round(streamed["images_per_second"] / second["images_per_second"], 2)}
            rows.append(row)
            print(json.dumps(row), flush=True)
            shutil.rmtree(folder, ignore_errors=True)
    small, large = rows[0], rows[-1]
    growth = {key: round(large["streamed"][key] / small["streamed"][key], 2) for key in ("peak_rss_mb", "peak_anonymous_mb")}
    carved_growth = round(large["streamed_val_split"]["peak_anonymous_mb"] / small["streamed_val_split"]["peak_anonymous_mb"], 2)
    what = f"{args.model or 'fastnet'}, {large['images']:,} JPEGs" if args.layout == "classes" else \
        f"{args.model or 'unet'} (segment), {large['images']:,} JPEG + PNG mask pairs"
    headline = (f"{what}: 2nd run reaches its first step "
                f"{large['first_step_speedup']}x sooner ({large['first_run']['first_step_seconds']} s -> "
                f"{large['second_run']['first_step_seconds']} s); streamed from the pack at "
                f"{large['streamed_over_in_memory_images_per_second']}x the in-memory images/s; peak memory "
                f"{small['images']:,} -> {large['images']:,} images: anonymous x{growth['peak_anonymous_mb']}, "
                f"RSS incl. page cache x{growth['peak_rss_mb']}; with --val-split 0.1 (the part cut to disk): anonymous "
                f"x{carved_growth}")
    common.record("streaming" if args.layout == "classes" else "streaming-pairs", headline, {"rows": rows, "memory_growth": growth,
                                          "memory_growth_val_split": {"peak_anonymous_mb": carved_growth}}, doc)


if __name__ == "__main__":
    main()
