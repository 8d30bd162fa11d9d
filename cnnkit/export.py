"""Export a trained network to ONNX or TorchScript, and check the exported file against PyTorch.

``export(run, "onnx")`` writes ``RUN/model.onnx``; ``export(run, "torchscript")``
writes ``RUN/model.pt``. Both take what the network takes: a normalised
``(N, C, H, W) float32`` batch (any ``N``), and return ``(N, classes)`` logits.
The preprocessing a caller needs (mean, std, class names, input shape) travels
inside the file: ONNX ``metadata_props`` / a TorchScript extra file
``cnnkit.json``.

After writing, the file is loaded back, by ONNX Runtime or ``torch.jit.load``,
and run on a random batch of a different size than the export used (so a
batch size baked into the graph is caught); the largest difference from
PyTorch's output, relative to the output's scale (its largest magnitude, at
least 1: float32 rounding grows with the values), must stay under ``tolerance``.

ONNX export uses PyTorch's TorchScript-based exporter first: it handles the
zoo's classifiers in about a second each, where the ``torch.export``-based one
(``dynamo=True``, needs the ``onnxscript`` package) takes ten times longer; the
latter is the fallback for graphs the former cannot express.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import torch
from torch import nn

if TYPE_CHECKING:
    from cnnkit.runs import Run

Format = Literal["onnx", "torchscript"]
FORMATS: tuple[Format, ...] = ("onnx", "torchscript")
SUFFIX: dict[str, str] = {"onnx": ".onnx", "torchscript": ".pt"}
OPSET = 17  # ONNX Runtime 1.15+ runs it; every op the zoo uses exists there


@dataclass
class ExportResult:
    """What :func:`export_model` wrote and how closely the file reproduces PyTorch."""

    path: Path
    format: str
    input_shape: tuple[int, ...]  # (C, H, W); the batch dimension is free
    checked_with: str  # "onnxruntime", "torch.jit" or "" when not checked
    max_abs_diff: float | None  # largest |exported - pytorch| over the check batch; None when not checked
    max_rel_diff: float | None  # max_abs_diff / max(1, largest |pytorch|): what ``tolerance`` bounds
    size_bytes: int

    def as_dict(self) -> dict[str, Any]:
        values = asdict(self)
        values["path"], values["input_shape"] = str(self.path), list(self.input_shape)
        return values


def _check_format(format: str) -> None:
    if format not in FORMATS:
        raise ValueError(f"--format must be one of {', '.join(FORMATS)}. Received: {format!r}")


@contextmanager
def _temporary_path(path: Path) -> Iterator[Path]:
    """A temporary file beside ``path`` that replaces it when the block succeeds (never a half-written file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    temporary = Path(name)
    try:
        yield temporary
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)


@contextmanager
def _quiet_exporters() -> Iterator[None]:
    # The exporters warn about the deprecated TorchScript path, about the zoo's input checks being traced as
    # constants (intended: the exported graph is built for one channel count and size) and about optimisations
    # they skip. All of it is noise to a user; a real failure raises.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.filterwarnings("ignore", "Constant folding", UserWarning)  # a skipped optimisation, not an error
        yield


def _onnx_bytes(model: nn.Module, example: torch.Tensor, dynamo: bool | None) -> bytes:
    """The serialized ONNX model; ``dynamo=None`` tries the TorchScript-based exporter, then the torch.export one."""
    buffer = io.BytesIO()
    with _quiet_exporters():
        if not dynamo:
            try:
                torch.onnx.export(model, (example,), buffer, dynamo=False, input_names=["images"],  # type: ignore[arg-type]
                                  output_names=["output"], opset_version=OPSET,
                                  dynamic_axes={"images": {0: "batch"}, "output": {0: "batch"}})
                return buffer.getvalue()
            except torch.onnx.errors.OnnxExporterError:
                if dynamo is False:
                    raise
                # e.g. an adaptive pool whose output size does not divide its input: only torch.export handles it
        try:
            import onnxscript  # noqa: F401
        except ImportError:
            raise OSError("this network needs the torch.export-based ONNX exporter, which needs `onnxscript`: "
                          "pip install 'cnnkit[export]'") from None
        program = torch.onnx.export(model, (example,), dynamo=True, input_names=["images"], output_names=["output"],
                                    dynamic_shapes=({0: torch.export.Dim("batch", min=1)},), opset_version=OPSET,
                                    verbose=False)
        assert program is not None  # with no file given, the exporter returns the program
        return program.model_proto.SerializeToString()


def _write_onnx(model: nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, str],
                dynamo: bool | None, validate: bool) -> None:
    try:
        import onnx
    except ImportError:
        raise OSError("ONNX export needs the `onnx` package: pip install 'cnnkit[export]'") from None
    data = _onnx_bytes(model, example, dynamo)
    # Serialized protobuf messages merge when concatenated (repeated fields append), so appending a ModelProto that
    # holds only the metadata adds it without parsing and re-serializing hundreds of MB of weights (VGG-16: 553 MB).
    extra = onnx.ModelProto()
    for key, value in metadata.items():
        entry = extra.metadata_props.add()
        entry.key, entry.value = key, value
    data += extra.SerializeToString()
    if validate:  # ONNX Runtime validates the graph when it loads the file for the check; without a check, do it here
        onnx.checker.check_model(onnx.load_from_string(data))
    path.write_bytes(data)


def _write_torchscript(model: nn.Module, example: torch.Tensor, path: Path, metadata: dict[str, Any]) -> None:
    with _quiet_exporters():
        traced = torch.jit.trace(model, example, check_trace=False)
        torch.jit.save(traced, str(path), _extra_files={"cnnkit.json": json.dumps(metadata)})


def run_exported(path: str | Path, images: torch.Tensor, format: str | None = None) -> torch.Tensor:
    """Outputs of an exported file on ``images`` (``(N, C, H, W) float32``), run by ONNX Runtime or TorchScript.

    ``format`` defaults to the one the suffix names (``.onnx``, else TorchScript).
    """
    path = Path(path)
    if (format or ("onnx" if path.suffix == ".onnx" else "torchscript")) == "onnx":
        try:
            import onnxruntime
        except ImportError:
            raise OSError("checking an ONNX file needs `onnxruntime`: pip install 'cnnkit[export]'") from None
        session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        name = session.get_inputs()[0].name
        return torch.from_numpy(session.run(None, {name: images.detach().cpu().float().numpy()})[0])
    # our own file, just written; TorchScript archives hold code, so only load files you trust
    module = torch.jit.load(str(path), map_location="cpu")
    with torch.no_grad():
        return module(images.detach().cpu().float())


def export_model(model: nn.Module, input_shape: tuple[int, ...], path: str | Path, format: str = "onnx", *,
                 metadata: dict[str, Any] | None = None, check: bool = True, tolerance: float = 1e-3,
                 dynamo: bool | None = None) -> ExportResult:
    """Export any classifier ``model`` taking ``(N, *input_shape)`` to ``path`` and check it against PyTorch.

    ``metadata`` (JSON-able values) is stored in the file. With ``check`` the
    file is run on 2 random images (the export traced 1) and compared with
    ``model``; a relative difference above ``tolerance`` raises ``ValueError`` and the
    file is not written. The model is exported on the CPU in float32, in eval mode.

    ONNX: ``dynamo=None`` uses PyTorch's TorchScript-based exporter and falls
    back to the ``torch.export``-based one for what the former cannot express;
    ``True`` / ``False`` force one of them.
    """
    _check_format(format)
    if not tolerance > 0:
        raise ValueError(f"--tolerance must be positive. Received: {tolerance}")
    if len(input_shape) != 3 or min(input_shape) < 1:
        raise ValueError(f"`input_shape` must be (C, H, W) with positive sizes. Received: {input_shape}")
    target = Path(path)
    model = model.cpu().float().eval()
    generator = torch.Generator().manual_seed(0)
    example = torch.randn(1, *input_shape, generator=generator)
    check_batch = torch.randn(2, *input_shape, generator=generator)
    values = {"input_shape": list(input_shape), **(metadata or {})}
    with _temporary_path(target) as temporary:
        if format == "onnx":  # ONNX metadata values are strings: JSON for anything else
            text = {key: value if isinstance(value, str) else json.dumps(value) for key, value in values.items()}
            _write_onnx(model, example, temporary, text, dynamo, validate=not check)
        else:
            _write_torchscript(model, example, temporary, values)
        difference: float | None = None
        relative: float | None = None
        if check:
            with torch.no_grad():
                expected = model(check_batch).float()
            got = run_exported(temporary, check_batch, format)
            if got.shape != expected.shape:
                raise ValueError(f"{target}: the exported model returns {tuple(got.shape)} for a batch of 2, PyTorch "
                                 f"{tuple(expected.shape)}; the export fixed a size it should not have")
            difference = float((got - expected).abs().max())
            relative = difference / max(1.0, float(expected.abs().max()))
            if not relative <= tolerance:
                raise ValueError(f"{target}: the exported model differs from PyTorch by {difference:.3g} ({relative:.3g} "
                                 f"of the output's scale, more than the tolerance {tolerance:g}); the file was not written")
        size = temporary.stat().st_size
    checked = ("onnxruntime" if format == "onnx" else "torch.jit") if check else ""
    return ExportResult(target, format, tuple(input_shape), checked, difference, relative, size)


def export(run: str | Path | Run, format: str = "onnx", out: str | Path | None = None, *, check: bool = True,
           tolerance: float = 1e-3, dynamo: bool | None = None) -> ExportResult:
    """Export a run directory's trained network (``RUN/model.onnx`` or ``RUN/model.pt`` unless ``out`` is given).

    The file stores the run's class names, input shape and normalisation
    (mean and std on pixels scaled to [0, 1]) as metadata.
    """
    from cnnkit.runs import Run

    _check_format(format)
    opened = Run.open(run)
    card = opened.card
    task = card.make_task()
    prep = card.prep()
    output = "x".join(map(str, task.output_shape(card.input_shape, len(card.class_names))))
    channels = card.input_shape[0]
    # never null: a network that normalises inside (a transfer run's adapter) takes pixels / 255, i.e. mean 0, std 1
    mean, std = prep.mean or (0.0,) * channels, prep.std or (1.0,) * channels
    metadata = {"producer": "cnnkit", "model": card.name, "task": card.task, "class_names": list(card.class_names),
                "input_shape": list(card.input_shape), "mean": mean, "std": std, **prep.record(),
                "input": "(N, C, H, W) float32: pixels / 255, then (x - mean) / std per channel",
                "output": f"(N, {output}) per image: {task.output_words}"}
    target = Path(out) if out is not None else opened.folder / f"model{SUFFIX[format]}"
    return export_model(opened.network(), card.input_shape, target, format, metadata=metadata, check=check,
                        tolerance=tolerance, dynamo=dynamo)


__all__ = ["FORMATS", "ExportResult", "export", "export_model", "run_exported"]
