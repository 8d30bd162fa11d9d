"""Figures of the explanations: input | kernel | output panels, one window highlighted and its sum written out.

Each figure draws what the text explanation works out, from the explanation's own
numbers (nothing is recomputed here): the (padded) input with the chosen window
outlined, the kernel, the output with the chosen cell outlined, and under the
panels the window's worked sum, the same text as the explanation's step.

    ==============  ====================================================================  ===================
    explanation     panels                                                                ``cell`` indexes
    ==============  ====================================================================  ===================
    conv            padded input (border shaded) | kernel | output                        the output
    conv, volume    one row per channel: padded channel | the filter's slice; the map     ``(filter,) row, col``
    pool            padded input (windows, winners ringed) | the window | output         the output
    backprop conv   rows: forward, dL/dK = X (*) dL/dY, dL/dX = full convolution          every row's output
    backprop pool   padded input (window, winner) | dL/dY | dL/dX (where it went)         dL/dY
    deconv          input | kernel | full output (the cropped border shaded)              the input
    ==============  ====================================================================  ===================

>>> from cnnkit.explain import explain_conv
>>> fig = figure(explain_conv("3 0 1; 1 5 8; 2 7 2", "1 0; 0 1"), cell=(1, 0))
>>> window_of(patches(fig.axes[0], "window")[0]), sum_text(fig)
(((1, 2), (0, 1)), 'output[1,0] = 1*1 + 5*0 + 2*0 + 7*1 = 8')
>>> pyplot().close(fig)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from cnnkit.explain.panels import (
    add_sum,
    check_figure_path,
    dot,
    draw_matrix,
    outline,
    padding_mask,
    panel_widths,
    patches,
    pyplot,
    ring,
    save_figure,
    sum_text,
    window_of,
)
from cnnkit.explain.steps import Explanation
from cnnkit.explain.volume import VolumeExplanation
from cnnkit.explain.working import Calculation

__all__ = ["check_cell", "draw", "figure", "patches", "sum_text", "window_of"]

Result = Explanation | VolumeExplanation | Calculation
Cell = tuple[int, ...]
INCH_PER_CELL = 0.42
MAX_INCHES = 16.0


def _kind(result: Result) -> str:
    if isinstance(result, Explanation):
        return result.op
    if isinstance(result, VolumeExplanation):
        return "volume"
    if result.op == "deconv":
        return "deconv"
    if result.op == "backprop":
        return "backprop-conv" if result.parts else "backprop-pool"
    raise ValueError(f"figures are drawn for conv, pool, deconv and backprop explanations. Received: op={result.op!r}")


def _shapes(result: Result) -> list[tuple[str, tuple[int, ...]]]:
    """What ``cell`` indexes: one or more named grids (every one must hold the cell)."""
    kind = _kind(result)
    if isinstance(result, Explanation):
        return [("output", tuple(result.output.shape))]
    if isinstance(result, VolumeExplanation):
        return [("output", tuple(result.output.shape))]
    if kind == "deconv":
        return [("input", tuple(np.shape(result.inputs["input"])))]
    if kind == "backprop-pool":
        return [("dL/dY", tuple(np.shape(result.inputs["grad"])))]
    names = ("forward output Y", "dL/dK", "dL/dX")  # the figure's rows: the cell is highlighted in each
    return [(name, tuple(part.output.shape)) for name, part in zip(names, result.parts, strict=True)]


def check_cell(result: Result, cell: Cell | None = None, name: str = "cell") -> Cell:
    """The cell a figure highlights: ``cell``, or the first one; one outside the grid is a ``ValueError`` naming ``name``.

    A volume's cell is ``(filter, row, column)``; ``(row, column)`` means filter 0. For backprop through a
    convolution the cell must lie in every row's output (the forward output, dL/dK and dL/dX).
    """
    grids = _shapes(result)
    depth = len(grids[0][1])
    chosen: Cell = tuple([0] * depth) if cell is None else tuple(cell)
    if depth == 3 and len(chosen) == 2:
        chosen = (0, *chosen)
    shown = ",".join(str(v) for v in (cell if cell is not None else chosen))
    if len(chosen) != depth or not all(isinstance(v, int | np.integer) and not isinstance(v, bool) for v in chosen):
        what = "FILTER,ROW,COL (or ROW,COL for filter 0)" if depth == 3 else "ROW,COL"
        raise ValueError(f"`{name}` must be {what}, whole numbers counted from 0. Received: {name}={shown}")
    for grid_name, shape in grids:
        if any(not 0 <= v < n for v, n in zip(chosen, shape, strict=True)):
            limits = ", ".join(f"{axis} 0-{n - 1}" for axis, n in zip(("filter", "row", "column")[3 - depth:], shape, strict=True))
            size = "x".join(str(n) for n in shape)
            alike = "; it is highlighted in Y, dL/dK and dL/dX alike" if len(grids) > 1 else ""
            raise ValueError(f"`{name}` must be a cell of the {size} {grid_name} ({limits}){alike}. Received: {name}={shown}")
    return chosen


def _step(steps: list[dict[str, Any]], **where: int) -> dict[str, Any]:
    return next(s for s in steps if all(s.get(k) == v for k, v in where.items()))


def _canvas(rows: int, widths: list[float], heights: list[float], text_lines: int) -> tuple[Any, Any]:
    """A figure with ``rows x len(widths)`` panels sized to their matrices, room below for the sum."""
    plt = pyplot()
    # beside a large input (an image, drawn as grey levels) a kernel keeps a quarter of its width, to stay readable,
    # and the cells shrink so that the figure stays at most MAX_INCHES wide
    widths = [max(w, 0.25 * max(widths)) for w in widths]
    inches = min(INCH_PER_CELL, (MAX_INCHES - 1.2 * len(widths)) / sum(widths))
    width = max(6.0, inches * sum(widths) + 1.2 * len(widths))
    height = inches * sum(heights) + 0.9 * rows + 0.25 * text_lines
    fig = plt.figure(figsize=(width, height))
    grid = fig.add_gridspec(rows, len(widths), width_ratios=widths, height_ratios=heights, wspace=0.35, hspace=0.55,
                            bottom=0.03, top=0.95)
    return fig, grid


def _title(fig: Any, text: str) -> None:
    """The explanation's title above everything (the panels' own titles sit just under it)."""
    fig.suptitle(text, fontsize=10, y=1.0, va="bottom")


def _conv_row(fig: Any, grid: Any, row: int, e: Explanation, step: dict[str, Any], names: tuple[str, str, str],
              shade: np.ndarray | None = None) -> list[Any]:
    """One row: ``e``'s padded input with the step's window (and taps), its kernel, its output with the step's cell."""
    axes = [fig.add_subplot(grid[row, i]) for i in range(3)]
    pads = e.parameters.get("pads", {"top": 0, "left": 0})
    h, w = e.input.shape
    if shade is None:
        shade = padding_mask(e.padded_input.shape, pads["top"], pads["left"], h, w)
    padded = e.padded_input.shape != e.input.shape
    draw_matrix(axes[0], e.padded_input, f"{names[0]} ({h}x{w}" + (f", padded to {e.padded_input.shape[0]}x"
                f"{e.padded_input.shape[1]}, border shaded)" if padded else ")"), shade)
    outline(axes[0], step["rows"], step["cols"])
    assert e.kernel is not None  # a convolution's explanation always has its kernel
    kh, kw = e.kernel.shape
    d = e.parameters["dilation"]
    if d != [1, 1]:
        for u in range(kh):
            for v in range(kw):
                dot(axes[0], step["rows"][0] + u * d[0], step["cols"][0] + v * d[1])
    draw_matrix(axes[1], e.kernel, f"{names[1]} ({kh}x{kw})")
    outline(axes[1], (0, kh - 1), (0, kw - 1), label="kernel")
    draw_matrix(axes[2], e.output, f"{names[2]} ({e.output.shape[0]}x{e.output.shape[1]})")
    outline(axes[2], (step["row"], step["row"]), (step["col"], step["col"]), label="cell")
    return axes


def _conv_figure(e: Explanation, cell: Cell) -> Any:
    step = _step(e.steps, row=cell[0], col=cell[1])
    assert e.kernel is not None
    fig, grid = _canvas(1, panel_widths(e.padded_input, e.kernel, e.output),
                        [float(max(e.padded_input.shape[0], e.kernel.shape[0], e.output.shape[0]))], 2)
    _conv_row(fig, grid, 0, e, step, ("input", "kernel as applied", "output"))
    _title(fig, e.title)
    add_sum(fig, f"output[{cell[0]},{cell[1]}] = {step['expression']}")
    return fig


def _pool_figure(e: Explanation, cell: Cell) -> Any:
    step = _step(e.steps, row=cell[0], col=cell[1])
    p, f, s = e.parameters["padding"], e.parameters["size"], e.parameters["stride"]
    h, w = e.input.shape
    window = np.asarray(step["window"], dtype=np.float64)
    fig, grid = _canvas(1, panel_widths(e.padded_input, window, e.output),
                        [float(max(e.padded_input.shape[0], window.shape[0], e.output.shape[0]))], 2)
    axes = [fig.add_subplot(grid[0, i]) for i in range(3)]
    padded = e.padded_input.shape != e.input.shape
    draw_matrix(axes[0], e.padded_input, f"input ({h}x{w}" + (f", padded to {e.padded_input.shape[0]}x"
                f"{e.padded_input.shape[1]}, border shaded)" if padded else ")"),
                padding_mask(e.padded_input.shape, p[0], p[1], h, w))
    if s[0] >= f[0] and s[1] >= f[1]:  # windows side by side: draw the tiling, as the slides colour it
        for other in e.steps:
            if other is not step:
                outline(axes[0], other["rows"], other["cols"], label="windows", colour="#888888", width=1.2)
    for other in e.steps:
        if "winner" in other and other is not step:
            ring(axes[0], other["winner"][0] + p[0], other["winner"][1] + p[1], label="other winner", colour="#9ecae1")
    outline(axes[0], step["rows"], step["cols"])
    mode = e.parameters["mode"]
    draw_matrix(axes[1], window, {"max": "window: its maximum", "min": "window: its minimum",
                                  "avg": "window: its average"}[mode])
    outline(axes[1], (0, window.shape[0] - 1), (0, window.shape[1] - 1), label="kernel")
    if "winner" in step:
        r, c = step["winner"][0] + p[0], step["winner"][1] + p[1]
        ring(axes[0], r, c)
        ring(axes[1], r - step["rows"][0], c - step["cols"][0])
    draw_matrix(axes[2], e.output, f"output ({e.output.shape[0]}x{e.output.shape[1]})")
    outline(axes[2], (step["row"], step["row"]), (step["col"], step["col"]), label="cell")
    _title(fig, e.title)
    at = f" (at input row {step['winner'][0]}, column {step['winner'][1]})" if "winner" in step else ""
    add_sum(fig, f"output[{cell[0]},{cell[1]}] = {step['expression']}{at}")
    return fig


def _volume_figure(e: VolumeExplanation, cell: Cell) -> Any:
    f, i, j = cell
    step = _step(e.steps, filter=f, row=i, col=j)
    channels, h, w = e.input.shape
    pads = e.parameters["pads"]
    shade = padding_mask(e.padded_input.shape[1:], pads["top"], pads["left"], h, w)
    fig, grid = _canvas(channels, panel_widths(e.padded_input[0], e.filters[f, 0], e.output[f]),
                        [float(e.padded_input.shape[1])] * channels, channels + 2)
    d = e.parameters["dilation"]
    for c in range(channels):
        ax_in, ax_k = fig.add_subplot(grid[c, 0]), fig.add_subplot(grid[c, 1])
        draw_matrix(ax_in, e.padded_input[c], f"input channel {c}" + (" (border shaded)" if shade.any() else ""), shade)
        outline(ax_in, step["rows"], step["cols"])
        if d != [1, 1]:
            for u in range(e.filters.shape[2]):
                for v in range(e.filters.shape[3]):
                    dot(ax_in, step["rows"][0] + u * d[0], step["cols"][0] + v * d[1])
        draw_matrix(ax_k, e.filters[f, c], f"filter {f}, slice {c}")
        outline(ax_k, (0, e.filters.shape[2] - 1), (0, e.filters.shape[3] - 1), label="kernel")
    ax_out = fig.add_subplot(grid[:, 2])
    draw_matrix(ax_out, e.output[f], f"output map {f} (bias {e.bias[f]:g})")
    outline(ax_out, (i, i), (j, j), label="cell")
    _title(fig, e.title)
    lines = [f"channel {ch['channel']}: {ch['expression']}" for ch in step["channels"]]
    add_sum(fig, "\n".join([*lines, f"output[{f}][{i},{j}] = {step['expression']}"]))
    return fig


def _conv_backprop_figure(c: Calculation, cell: Cell) -> Any:
    forward, grad_weight, grad_input = c.parts
    pads = c.extra["pads"]
    h, w = forward.input.shape
    used = grad_weight.input.shape
    shade = padding_mask(forward.padded_input.shape, pads["top"], pads["left"], h, w)[: used[0], : used[1]]
    padded = bool(shade.any())
    gradient = "dL/dXp" if padded else "dL/dX"  # with padding, the gradient of the padded input's cells
    rows = [(forward, ("X", "K", "Y = X (*) K"), None, "Y"),
            (grad_weight, ("X padded" if padded else "X", "dL/dY", "dL/dK = X (*) dL/dY"), shade, "dL/dK"),
            (grad_input, ("dL/dY spread and padded", "K turned 180 degrees",
                          f"{gradient}" + (" (the padded X's cells)" if padded else "")), None, gradient)]
    # each column as wide as its widest matrix over the three rows
    columns = [[part.padded_input, part.kernel if part.kernel is not None else part.output, part.output] for part, *_ in rows]
    widths = [max(panel_widths(*(row[i] for row in columns))) for i in range(3)]
    heights = [float(max(part.padded_input.shape[0], part.output.shape[0])) for part, *_ in rows]
    fig, grid = _canvas(3, widths, heights, 5)
    lines = []
    for index, (part, names, row_shade, label) in enumerate(rows):
        step = _step(part.steps, row=cell[0], col=cell[1])
        _conv_row(fig, grid, index, part, step, names, row_shade)
        lines.append(f"{label}[{cell[0]},{cell[1]}] = {step['expression']}")
    _title(fig, c.title)
    add_sum(fig, "\n".join(lines))
    return fig


def _pool_backprop_figure(c: Calculation, cell: Cell) -> Any:
    x = np.asarray(c.inputs["input"], dtype=np.float64)
    g = np.asarray(c.inputs["grad"], dtype=np.float64)
    grad_x = np.asarray(c.output["grad_input"], dtype=np.float64)
    p, mode = c.inputs["padding"], c.inputs["mode"]
    step = _step(c.steps, row=cell[0], col=cell[1])
    padded = np.full((x.shape[0] + 2 * p[0], x.shape[1] + 2 * p[1]), -np.inf if mode == "max" else 0.0)
    padded[p[0]:p[0] + x.shape[0], p[1]:p[1] + x.shape[1]] = x
    fig, grid = _canvas(1, panel_widths(padded, g, grad_x), [float(max(padded.shape[0], g.shape[0]))], 2)
    axes = [fig.add_subplot(grid[0, i]) for i in range(3)]
    draw_matrix(axes[0], padded, "input" + (" (padded, border shaded)" if any(p) else ""),
                padding_mask(padded.shape, p[0], p[1], *x.shape))
    outline(axes[0], step["rows"], step["cols"])
    d = c.inputs["dilation"]
    if d != [1, 1]:
        for r in range(step["rows"][0], step["rows"][1] + 1, d[0]):
            for col in range(step["cols"][0], step["cols"][1] + 1, d[1]):
                dot(axes[0], r, col)
    draw_matrix(axes[1], g, f"dL/dY ({g.shape[0]}x{g.shape[1]})")
    outline(axes[1], (cell[0], cell[0]), (cell[1], cell[1]), label="cell")
    draw_matrix(axes[2], grad_x, f"dL/dX ({grad_x.shape[0]}x{grad_x.shape[1]}): where it went")
    for r, col in step["to"]:
        ring(axes[2], r, col, label="to")
        if mode == "max":
            ring(axes[0], r + p[0], col + p[1])
    _title(fig, c.title)
    add_sum(fig, f"window [{cell[0]},{cell[1]}]: {step['expression']}")
    return fig


def _deconv_figure(c: Calculation, cell: Cell) -> Any:
    x = np.asarray(c.inputs["input"], dtype=np.float64)
    k = np.asarray(c.inputs["kernel"], dtype=np.float64)
    full = np.asarray(c.extra["full_output"], dtype=np.float64)
    p = c.inputs["padding"]
    out = (c.extra["output_size"]["height"]["value"], c.extra["output_size"]["width"]["value"])
    step = _step(c.steps, row=cell[0], col=cell[1])
    fig, grid = _canvas(1, panel_widths(x, k, full), [float(max(x.shape[0], k.shape[0], full.shape[0]))], 2)
    axes = [fig.add_subplot(grid[0, i]) for i in range(3)]
    draw_matrix(axes[0], x, f"input ({x.shape[0]}x{x.shape[1]})")
    outline(axes[0], (cell[0], cell[0]), (cell[1], cell[1]), label="cell")
    draw_matrix(axes[1], k, f"kernel ({k.shape[0]}x{k.shape[1]})")
    outline(axes[1], (0, k.shape[0] - 1), (0, k.shape[1] - 1), label="kernel")
    shade = padding_mask(full.shape, p[0], p[1], *out)
    cut = " (shaded: cut by the padding)" if shade.any() else ""
    bias = c.inputs["bias"]
    draw_matrix(axes[2], full, f"full output {full.shape[0]}x{full.shape[1]}{cut}" + (f", then + {bias:g}" if bias else ""),
                shade)
    outline(axes[2], step["rows"], step["cols"])
    _title(fig, c.title)
    add_sum(fig, f"{step['label']}: {step['expression']}")
    return fig


def figure(result: Result, cell: Cell | None = None) -> Any:
    """The matplotlib figure of ``result`` with ``cell``'s window highlighted (default: the first); see the module's table."""
    chosen = check_cell(result, cell)
    kind = _kind(result)
    if isinstance(result, Explanation):
        return _conv_figure(result, chosen) if kind == "conv" else _pool_figure(result, chosen)
    if isinstance(result, VolumeExplanation):
        return _volume_figure(result, chosen)
    if kind == "deconv":
        return _deconv_figure(result, chosen)
    return _conv_backprop_figure(result, chosen) if kind == "backprop-conv" else _pool_backprop_figure(result, chosen)


def draw(result: Result, path: str | Path, cell: Cell | None = None, flag: str = "figure") -> Path:
    """Draw ``result`` (see :func:`figure`) into ``path``, PNG or SVG by its suffix, atomically; returns the path.

    ``flag`` names the path in error messages (``--figure`` on the command line).
    """
    check_figure_path(path, flag)
    return save_figure(figure(result, cell), path, flag)
