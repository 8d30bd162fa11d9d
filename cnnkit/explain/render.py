"""Plain-text layout of explanations, as the slides write them out by hand."""

from __future__ import annotations

from typing import Any

import numpy as np

from cnnkit import arith
from cnnkit.explain.matrices import grid, inline
from cnnkit.explain.results import ExampleResult
from cnnkit.explain.steps import Explanation
from cnnkit.explain.volume import VolumeExplanation
from cnnkit.explain.working import Calculation

OUTPUT_SIZE_HEADER = "output size, floor((n + 2p - f)/s) + 1 per side"
DILATED_HEADER = "output size, floor((n + 2p - d(f - 1) - 1)/s) + 1 per side"
CEIL_HEADER = "output size, ceil((n + 2p - f)/s) + 1 per side (ceil_mode)"


def render(explanation: Explanation) -> str:
    """The inputs, the output-size formula with its numbers, every output cell's step, then the output."""
    e = explanation
    lines = [e.title, "", f"input ({e.input.shape[0]}x{e.input.shape[1]}):", *grid(e.input)]
    if e.padded_input.shape != e.input.shape:
        lines += [f"padded input ({e.padded_input.shape[0]}x{e.padded_input.shape[1]}):", *grid(e.padded_input)]
    if e.kernel is not None:
        lines += [f"kernel as applied ({e.kernel.shape[0]}x{e.kernel.shape[1]}):", *grid(e.kernel)]
    lines += _output_size(e.output_size, e.parameters.get("dilation", [1, 1]), e.parameters.get("ceil_mode", False))
    lines += ["", "each output cell:"]
    for step in e.steps:
        lines.append(f"  [{step['row']},{step['col']}] window rows {step['rows'][0]}-{step['rows'][1]}, "
                     f"columns {step['cols'][0]}-{step['cols'][1]}: {inline_window(step['window'])}")
        at = f" (at row {step['winner'][0]}, column {step['winner'][1]})" if "winner" in step else ""
        lines.append(f"        {step['expression']}{at}")
    lines += ["", f"output ({e.output.shape[0]}x{e.output.shape[1]}):", *grid(e.output)]
    lines += [f"note: {note}" for note in e.notes]
    return "\n".join(lines)


def _output_size(worked: tuple[arith.Worked, arith.Worked], dilation: list[int], ceil_mode: bool = False) -> list[str]:
    header = CEIL_HEADER if ceil_mode else OUTPUT_SIZE_HEADER if list(dilation) == [1, 1] else DILATED_HEADER
    return ["", f"{header}:", *(f"  {side}: {w.formula}" for side, w in zip(arith.SIDES, worked, strict=True))]


def render_volume(explanation: VolumeExplanation) -> str:
    """A multi-channel convolution: the channels, the filters' slices, every cell's per-channel sums, the output maps."""
    e = explanation
    _, h, w = e.input.shape
    lines = [e.title, ""]
    for i, channel in enumerate(e.input):
        lines += [f"input channel {i} ({h}x{w}):", *grid(channel)]
    if e.padded_input.shape != e.input.shape:
        lines += [f"padded (each channel {e.padded_input.shape[1]}x{e.padded_input.shape[2]}):"]
        for i, channel in enumerate(e.padded_input):
            lines += [f" channel {i}:", *grid(channel, "    ")]
    for f, slices in enumerate(e.filters):
        lines.append(f"filter {f} as applied, bias {e.bias[f]:g}:")
        for i, kernel_slice in enumerate(slices):
            lines += [f" slice for channel {i}:", *grid(kernel_slice, "    ")]
    lines += _output_size(e.output_size, e.parameters["dilation"])
    lines += ["", "each output cell (per channel: window times slice, summed; then the channel sums plus the bias):"]
    for step in e.steps:
        lines.append(f"  filter {step['filter']} [{step['row']},{step['col']}] window rows {step['rows'][0]}-{step['rows'][1]}, "
                     f"columns {step['cols'][0]}-{step['cols'][1]}:")
        for ch in step["channels"]:
            lines.append(f"      channel {ch['channel']} {inline_window(ch['window'])}: {ch['expression']}")
        lines.append(f"      total: {step['expression']}")
    lines += ["", f"output ({e.output.shape[0]}x{e.output.shape[1]}x{e.output.shape[2]}, one map per filter):"]
    for f, out_map in enumerate(e.output):
        lines += [f" map {f}:", *grid(out_map, "    ")]
    lines += [f"note: {note}" for note in e.notes]
    return "\n".join(lines)


def _value_lines(name: str, value: Any) -> list[str]:
    if isinstance(value, list) and value and isinstance(value[0], list):
        return [f"{name}:", *grid(np.asarray(value, dtype=np.float64))]
    if isinstance(value, list):
        return [f"{name}: [{' '.join(f'{v:.6g}' if isinstance(v, float) else str(v) for v in value)}]"]
    if isinstance(value, dict):
        return [line for key, item in value.items() for line in _value_lines(f"{name} {key}", item)]
    return [f"{name}: {value}"]


def render_calculation(calculation: Calculation) -> str:
    """An activation, dense layer, softmax, parameter count or backprop: inputs, one line per step, output, notes."""
    c = calculation
    lines = [c.title, ""]
    for name, value in c.inputs.items():
        if value is not None:
            lines += _value_lines(name, value)
    lines += ["", "steps:"]
    for step in c.steps:
        lines.append(f"  {step['label']}: {step['expression']}")
        lines += [f"      {detail}" for detail in step.get("details", [])]
    lines += ["", *_value_lines("output", c.output)]
    lines += [f"note: {note}" for note in c.notes]
    for part in c.parts:
        lines += ["", "-" * 40, render(part)]
    return "\n".join(lines)


def inline_window(window: list[list[float]]) -> str:
    return f"[{inline(np.asarray(window, dtype=np.float64))}]"


def render_example(result: ExampleResult, *, steps: bool = True) -> str:
    """One slide example: what was checked, where the slide differs and why, then (with ``steps``) the working."""
    status = "matches the correct result" if result.ok else "DOES NOT match the correct result"
    wrong = [d for d in result.slide_differences if d.get("kind") != "unfollowed"]  # "unfollowed": right number
    if result.ok and wrong:  # cnnkit's numbers are right; some of the slide's are not
        cells = len({(d.get("filter"), d.get("row"), d.get("col"), d.get("mode")) for d in wrong})
        status += f"; the slide misprints {cells} number(s), listed below"
    lines = [f"{result.id} ({result.kind}, from {result.source}): {status}"]
    for check in result.checks:
        lines.append(f"  {'ok  ' if check.ok else 'FAIL'} {check.what}" + ("" if check.ok else f": computed {check.computed}, expected {check.expected}"))
    differing = {(d.get("filter"), d.get("row"), d.get("col"), d.get("mode")) for d in wrong}
    if result.printed_count:
        lines.append(f"  the slide prints {result.printed_count} number(s) of the result: "
                     + (f"{len(differing)} differ from the correct result" if differing else "all are correct"))
    labels = {"misprint": "slide differs at", "inherited": "slide differs (inherited from its misprinted input) at",
              "inconsistent": "slide is inconsistent at",
              "unfollowed": "slide's number is right but does not follow from its own map at"}
    for diff in result.slide_differences:
        where = f" [{diff['where']}]" if diff.get("where") else ""
        lines.append(f"  {labels.get(diff.get('kind', 'misprint'), 'slide differs at')} {diff['why']}{where}")
    for variant in result.slide_variants:
        lines.append(f"  slide prints the {variant['what']} differently: {variant['why']}")
    if result.slide_error:
        lines.append(f"  slide note: {result.slide_error}")
    lines += [f"  note: {note}" for note in result.notes]
    if result.table:
        lines += ["", *_table(result.table)]
    if steps:
        for explanation in result.explanations:
            lines += ["", render_volume(explanation) if isinstance(explanation, VolumeExplanation) else render(explanation)]
    return "\n".join(lines)


def _table(rows: list[dict[str, Any]]) -> list[str]:
    """The layer table as the slides print it: layer, output (H x W x C), activation size, weights, biases, parameters."""
    header = ("layer", "output", "activations", "weights", "biases", "params", "formula")
    cells = [header] + [(r["layer"], r["output"], str(r["activation_size"]), str(r["weights"]), str(r["biases"]), str(r["params"]),
                         r["formula"]) for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  " + "  ".join(cell.ljust(width) if i in (0, 1, 6) else cell.rjust(width)
                              for i, (cell, width) in enumerate(zip(row, widths, strict=True))).rstrip() for row in cells]
    total = sum(r["params"] for r in rows)
    return [*lines, f"  total learnable parameters: {total:,}"]


def render_examples(results: list[ExampleResult]) -> str:
    """A one-paragraph summary per example, without the cell-by-cell working."""
    return "\n\n".join(render_example(result, steps=False) for result in results)


def render_any(result: Explanation | VolumeExplanation | Calculation) -> str:
    """Text for any explanation this package builds."""
    if isinstance(result, VolumeExplanation):
        return render_volume(result)
    if isinstance(result, Calculation):
        return render_calculation(result)
    return render(result)
