"""Refuse networks that would not fit before allocating them: build on the ``meta`` device, count, then build.

A layer table or a run directory can ask for ``conv 99999999 3x3`` or a
100000x100000 input: PyTorch would try to allocate terabytes and die with an
allocator traceback. Built on the ``meta`` device, a network has shapes and no
storage, so its parameters can be counted first (:func:`fitting`). One image's
activations are then counted by one real forward pass of a zero image under an
address-space cap (``RLIMIT_AS``: an allocation beyond this machine's memory
fails at once instead of being attempted); only where that cap cannot be set,
or when the network is refused, does the forward pass run on ``meta`` (exact
figures, but its first use imports SymPy: 0.7 to 2 s). What would not fit in
this machine's memory is refused with the figures.
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, TypeVar

try:
    import resource
except ImportError:  # Windows: no address-space cap; the meta estimate is used
    resource = None  # type: ignore[assignment]

import torch
from torch import nn

Shape = tuple[int, ...]
M = TypeVar("M", bound=nn.Module)
GIB = float(1 << 30)


class TooLarge(ValueError):
    """What was asked for would not fit in this machine's memory; the message gives the figures."""


def memory_bytes() -> int:
    """This machine's physical memory (``$CNNKIT_MEMORY_LIMIT`` in bytes overrides it, e.g. for tests)."""
    override = os.environ.get("CNNKIT_MEMORY_LIMIT")
    if override:
        return int(override)
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):  # not POSIX: assume a laptop's
        return 16 << 30


def estimate(model: nn.Module, input_shape: Shape) -> tuple[int, int, Shape | None]:
    """Bytes of ``model``'s parameters and buffers, bytes of one image's activations, and its output shape.

    ``model`` is on the ``meta`` device; the forward pass runs there too, so nothing
    is allocated. Activations are the sum of every module's output (float32); the
    output shape is None when the pass cannot run on ``meta`` (then activations count 0).
    """
    stored = sum(t.numel() * t.element_size() for t in (*model.parameters(), *model.buffers()))
    total = [0]

    def count(module: nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            total[0] += output.numel() * 4

    handles = [m.register_forward_hook(count) for m in model.modules()]
    try:
        with torch.no_grad():
            output = model.eval()(torch.empty((1, *input_shape), device="meta"))
        shape: Shape | None = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else None
    except (RuntimeError, NotImplementedError, TypeError, ValueError):
        total[0], shape = 0, None
    finally:
        for handle in handles:
            handle.remove()
    return stored, total[0], shape


def check_fits(model: nn.Module, input_shape: Shape, what: str) -> Shape | None:
    """Raise ``ValueError`` with the figures if the ``meta`` ``model`` with one image would not fit in memory;
    return its output shape per image (None when it cannot be computed on ``meta``)."""
    stored, activations, shape = estimate(model, input_shape)
    params = sum(p.numel() for p in model.parameters())
    need, have = stored + activations, memory_bytes()
    if need > have:
        raise TooLarge(
            f"{what}: the network would need {need / GIB:,.1f} GiB ({params:,} parameters: {stored / GIB:,.1f} GiB; "
            f"one {'x'.join(map(str, input_shape))} image's activations: {activations / GIB:,.1f} GiB), more than this "
            f"machine's {have / GIB:,.1f} GiB of memory; make its layers or its input smaller"
        )
    return shape


def check_data_fits(count: int, shape: Shape, what: str) -> None:
    """Raise :class:`TooLarge` if ``count`` uint8 images of ``shape`` (C, H, W) would take more than half this
    machine's memory (the other half is for the network, its batches and a resize's working copy)."""
    need, have = count * math.prod(shape), memory_bytes()
    if 2 * need > have:
        raise TooLarge(f"{what}: {count:,} images of {'x'.join(map(str, shape))} would take {need / GIB:,.1f} GiB, "
                       f"more than half this machine's {have / GIB:,.1f} GiB of memory; choose a smaller --image-size")


def _address_space() -> int | None:
    """This process's virtual memory size in bytes (Linux), or None."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmSize:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return None


@contextmanager
def _capped(extra: int) -> Iterator[bool]:
    """Inside the block, an allocation that would take the address space ``extra`` bytes past its size now fails
    at once (``RLIMIT_AS``); yields False, and caps nothing, where that cannot be set."""
    size = _address_space()
    if resource is None or size is None:
        yield False
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_AS)
    cap = size + max(extra, 0)
    for limit in (soft, hard):
        if limit != resource.RLIM_INFINITY:
            cap = min(cap, limit)
    try:
        resource.setrlimit(resource.RLIMIT_AS, (cap, hard))
    except (ValueError, OSError):
        yield False
        return
    try:
        yield True
    finally:
        resource.setrlimit(resource.RLIMIT_AS, (soft, hard))


def _refused_allocation(error: BaseException) -> bool:
    text = str(error).lower()
    return isinstance(error, MemoryError) or "allocate" in text or "out of memory" in text


def _probe(model: nn.Module, input_shape: Shape) -> tuple[int, Shape | None]:
    """Bytes of one image's activations and the output shape per image, from one real forward pass of a zero image
    in eval mode (the module's mode is put back). ``MemoryError`` if an allocation is refused; a network that does
    not take this input gives (0, None), as :func:`estimate` does: its real use says why."""
    total = [0]

    def count(module: nn.Module, inputs: Any, output: Any) -> None:
        if isinstance(output, torch.Tensor):
            total[0] += output.numel() * 4

    handles = [m.register_forward_hook(count) for m in model.modules()]
    training = model.training
    try:
        with torch.no_grad():
            output = model.eval()(torch.zeros((1, *input_shape)))
        shape: Shape | None = tuple(output.shape[1:]) if isinstance(output, torch.Tensor) else None
    except (RuntimeError, MemoryError, NotImplementedError, TypeError, ValueError) as error:
        if _refused_allocation(error):
            raise MemoryError(str(error)) from None
        total[0], shape = 0, None
    finally:
        for handle in handles:
            handle.remove()
        model.train(training)
    return total[0], shape


def checked(make: Callable[[], M], input_shape: Shape, what: str) -> tuple[M, Shape | None]:
    """``make()`` and its output shape per image, once its parameters and one image's activations are known to fit
    in memory (module doc); :class:`TooLarge` with the figures otherwise, raised before the large allocation."""
    with torch.device("meta"):
        meta = make()
    stored = sum(t.numel() * t.element_size() for t in (*meta.parameters(), *meta.buffers()))
    have = memory_bytes()
    if stored > have:
        check_fits(meta, input_shape, what)  # raises, with the figures
    model = make()
    with _capped(have - stored) as capped:
        if not capped:
            return model, check_fits(meta, input_shape, what)
        try:
            activations: int | None
            activations, shape = _probe(model, input_shape)
        except MemoryError:
            activations, shape = None, None
    if activations is None or stored + activations > have:
        del model
        check_fits(meta, input_shape, what)  # raises, with the figures
        raise TooLarge(f"{what}: one {'x'.join(map(str, input_shape))} image's activations could not be allocated "
                       f"in this machine's {have / GIB:,.1f} GiB of memory; make its layers or its input smaller")
    return model, shape


def fitting(make: Callable[[], M], input_shape: Shape, what: str) -> M:
    """``make()``, once it is known to fit in memory with one image (:func:`checked`)."""
    return checked(make, input_shape, what)[0]


def build_checked(source: dict[str, Any], input_shape: Shape, what: str, expected: Shape | None = None) -> nn.Module:
    """:func:`cnnkit.network.build` of ``source``, refused first if it would not fit in memory or (``expected``)
    does not output that shape per image. Errors name ``what`` (e.g. the run's card and its field)."""
    from cnnkit.network import build

    try:
        model, shape = checked(lambda: build(source, input_shape), input_shape, what)
    except (KeyError, TypeError, IndexError, AttributeError, RuntimeError) as error:
        raise ValueError(f"{what} cannot be rebuilt ({type(error).__name__}: {error})") from None
    if expected is not None and shape is not None and shape != tuple(expected):
        raise ValueError(f"{what}: the network outputs {'x'.join(map(str, shape))} per image, but the run's task and "
                         f"classes need {'x'.join(map(str, expected))}; the run's files do not belong together")
    return model
