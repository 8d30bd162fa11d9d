"""Device and numeric precision for a run: what ``auto`` means, decided once and printed."""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import torch


@dataclass(frozen=True)
class Runtime:
    """Where and how a run computes."""

    device: torch.device
    precision: str  # fp32, bf16 or fp16
    channels_last: bool
    reason: str  # why, in words, for the log

    @property
    def autocast_dtype(self) -> torch.dtype | None:
        return {"bf16": torch.bfloat16, "fp16": torch.float16}.get(self.precision)

    def autocast(self) -> contextlib.AbstractContextManager[object]:
        """Mixed-precision context for the forward pass (a no-op in fp32)."""
        dtype = self.autocast_dtype
        if dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=dtype)

    def describe(self) -> str:
        layout = ", channels-last" if self.channels_last else ""
        return f"{self.device.type} {self.precision}{layout} ({self.reason})"


# oneDNN's instruction-set caps (ONEDNN_MAX_CPU_ISA) below native bf16: with one of them its bf16 is emulated
_ONEDNN_BELOW_BF16 = frozenset({"SSE41", "AVX", "AVX2", "AVX2_VNNI", "AVX2_VNNI_2", "AVX512_CORE",
                                "AVX512_CORE_VNNI"})


@cache
def cpu_has_bf16() -> bool:
    """True on CPUs with native bf16 arithmetic (AVX512-BF16 or AMX), where bf16 autocast pays.

    False also where the process caps PyTorch's CPU kernels below it: ``ONEDNN_MAX_CPU_ISA`` at AVX512_CORE_VNNI
    or lower, or ``ATEN_CPU_CAPABILITY`` at ``avx2`` or ``default`` (what such a CPU runs, e.g. to measure its
    fp32 path on a machine with bf16).
    """
    if os.environ.get("ONEDNN_MAX_CPU_ISA", "").strip().upper() in _ONEDNN_BELOW_BF16:
        return False
    if os.environ.get("ATEN_CPU_CAPABILITY", "").strip().lower() in ("default", "avx2"):
        return False
    cpuinfo = Path("/proc/cpuinfo")
    if not cpuinfo.exists():
        return False
    flags = cpuinfo.read_text(errors="replace")
    return "avx512_bf16" in flags or "amx_bf16" in flags


def choose(device: str = "auto", precision: str = "auto", channels_last: bool | None = None) -> Runtime:
    """Resolve ``auto`` choices; an unavailable device or precision is a ``ValueError`` that says why.

    ``auto`` takes a CUDA GPU, else Apple silicon's ``mps`` where PyTorch reports it available, else the CPU.
    On ``mps`` the precision is fp32 and the layout contiguous unless asked otherwise: neither bf16 autocast nor
    channels-last has been measured there (no Apple machine here).
    """
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "mps" if mps_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is available to this PyTorch build. Use --device cpu or auto.")
    if device == "mps" and not mps_available():
        raise ValueError("--device mps: PyTorch reports no Apple-silicon GPU (MPS) here. Use --device cpu or auto.")
    if device not in ("cpu", "cuda", "mps"):
        raise ValueError(f"--device must be auto, cpu, cuda or mps. Received: {device!r}")
    dev = torch.device(device)
    if precision == "auto" and dev.type == "mps":
        precision, reason = "fp32", "MPS: fp32, bf16 unmeasured here"
    elif precision == "auto":
        if dev.type == "cuda":
            precision, reason = ("bf16", "GPU has bf16") if torch.cuda.is_bf16_supported() else ("fp16", "GPU lacks bf16")
        elif cpu_has_bf16():
            precision, reason = "bf16", "CPU has AVX512-BF16"
        else:
            precision, reason = "fp32", "CPU lacks native bf16"
    else:
        reason = "as asked"
    if precision == "fp16" and dev.type == "cpu":
        raise ValueError("--precision fp16 needs --device cuda; on a CPU use bf16 or fp32.")
    if precision != "fp32" and dev.type == "mps":
        raise ValueError(f"--precision {precision} on --device mps is not supported by cnnkit; use fp32 or auto.")
    if precision == "bf16" and dev.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise ValueError("--precision bf16: this GPU has no bf16; use fp16 or auto.")
    # oneDNN's convolutions work in NHWC; training step speed-ups measured here: bf16 (Xeon with AVX512-BF16)
    # fastnet 1.6x, vgg_small 1.5x, resnet_small 1.3x, mobilenet_v1 1.1x, lenet5 1.1x (efficientnet_lite0 0.9x:
    # pass --no-channels-last there); fp32 (2-core AMD EPYC without bf16), batch 32 / 128: lenet5 1.50x / 1.50x,
    # fastnet 1.34x / 1.24x, vgg_small 1.13x / 1.61x, resnet_small 1.02x / 1.34x (docs/benchmarks.md)
    auto_layout = dev.type != "mps"
    layout = auto_layout if channels_last is None else channels_last
    return Runtime(dev, precision, layout, reason)


def mps_available() -> bool:
    """Whether PyTorch reports Apple silicon's GPU (the ``mps`` backend) usable here."""
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())
