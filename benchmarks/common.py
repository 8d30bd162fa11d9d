"""What every benchmark shares: the machine's description, repeated timing, and the record it leaves.

Each benchmark prints its result as JSON and appends one row to
``docs/benchmarks.md``: date, benchmark, headline, CPU/GPU, cores, torch
version and the load average when it ran (on a shared machine a number means
little without it).
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # the checkout's cnnkit, when run as `python benchmarks/NAME.py` without installing
DOC = ROOT / "docs" / "benchmarks.md"
HEADER = """# Benchmarks

Rows are appended by the scripts in `benchmarks/` (each prints the full result as JSON). Timings depend on the
machine and on what else runs on it: the load average (1 minute) is recorded with every row.

| date | benchmark | result | CPU / GPU | cores (threads) | torch | load |
| --- | --- | --- | --- | --- | --- | --- |
"""


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def cpu_flags() -> str:
    """The CPU features that decide cnnkit's defaults: native bf16 (AVX512-BF16, AMX) or neither."""
    try:
        flags = set(Path("/proc/cpuinfo").read_text().split())
    except OSError:
        return "unknown"
    found = [name for name in ("avx512_bf16", "amx_bf16", "avx512f", "avx2") if name in flags]
    # caps on what PyTorch's CPU kernels may use (cnnkit.runtime.cpu_has_bf16 reads them too): a run capped to
    # AVX2 is this CPU running the fp32 path of a CPU without AVX-512
    caps = [f"{name}={os.environ[name]}" for name in ("ONEDNN_MAX_CPU_ISA", "ATEN_CPU_CAPABILITY") if os.environ.get(name)]
    return " ".join(found + (["capped:", *caps] if caps else [])) or "none of avx2, avx512f, avx512_bf16, amx_bf16"


def machine() -> dict[str, Any]:
    """CPU, GPU, cores, threads, clock, versions and the load average, for the record."""
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"cpu": cpu_name(), "cpu_flags": cpu_flags(), "gpu": gpu, "cores": os.cpu_count(), "threads": torch.get_num_threads(),
            "clock": "cpu" if CLOCK is time.process_time else "wall",
            "torch": torch.__version__, "python": platform.python_version(),
            "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None}


CLOCK: Callable[[], float] = time.perf_counter


def interleaved(runs: dict[str, Callable[[], int]], repeats: int) -> dict[str, list[float]]:
    """Items per second of each run, alternating A, B, A, B ... so that load changes hit all of them alike.

    Each run returns how many items it did. Timed by :data:`CLOCK` (wall time,
    or this process's CPU time with ``--clock cpu``).
    """
    rates: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(repeats):
        for name, fn in runs.items():
            start = CLOCK()
            items = fn()
            rates[name].append(items / (CLOCK() - start))
    return rates


def record(benchmark: str, headline: str, result: dict[str, Any], doc: Path | None = DOC) -> None:
    """Print ``result`` (with the machine) as JSON and append a row to ``docs/benchmarks.md`` (``doc=None``: don't)."""
    info = machine()
    print(json.dumps({"benchmark": benchmark, "headline": headline, "machine": info, **result}, indent=2))
    if doc is None:
        return
    doc.parent.mkdir(parents=True, exist_ok=True)
    if not doc.exists():
        doc.write_text(HEADER)
    hardware = f"{info['cpu']} ({info['cpu_flags']})" + (f" / {info['gpu']}" if info["gpu"] else "")
    clock = ", CPU time" if info["clock"] == "cpu" else ""
    row = (f"| {datetime.date.today().isoformat()} | {benchmark} | {headline} | {hardware} | {info['cores']} "
           f"({info['threads']}{clock}) | {info['torch']} | {info['load_average']} |\n")
    with doc.open("a", encoding="utf-8") as file:
        file.write(row)


def add_common_arguments(parser: Any) -> None:
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's choice)")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="cpu: time by this process's CPU time, which other programs' load barely changes; "
                             "meaningful with --threads 1 only (default: wall)")
    parser.add_argument("--no-record", action="store_true", help="print JSON only; do not append to docs/benchmarks.md")


def apply_common_arguments(args: Any) -> Path | None:
    """Set the threads and the clock; the document to append to (None with --no-record)."""
    global CLOCK
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.clock == "cpu":
        if torch.get_num_threads() != 1:
            raise SystemExit("--clock cpu adds up the CPU time of all threads: use it with --threads 1")
        CLOCK = time.process_time
    return None if args.no_record else DOC
