"""The run directory: atomic files, the checkpoint for exact resume, and the published model.

Layout::

    RUN/config.json         the TrainConfig
    RUN/metrics.jsonl       one JSON line per completed epoch
    RUN/model.safetensors   the weights (safetensors: no pickle)
    RUN/model.json          how to rebuild the network: source, classes, input shape, preprocessing
    RUN/summary.txt         the per-layer summary
    RUN/checkpoint/state.pt model, optimizer, schedule, RNG, epoch and batch (read with weights_only=True)

Every file is written to a temporary file in the same folder, flushed to disk
and renamed over the old one, so an interruption never leaves half a file.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load as load_safetensors
from safetensors.torch import save as save_safetensors
from torch import nn

CHECKPOINT = Path("checkpoint") / "state.pt"


def atomic_write(path: Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never a part."""
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_json(path: Path, value: Any) -> None:
    atomic_write(path, (json.dumps(value, indent=2) + "\n").encode())


def read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: missing; is {path.parent} a cnnkit run directory?") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not valid JSON ({error}); the run directory is damaged") from None


def write_metrics(run: Path, history: list[dict[str, Any]]) -> None:
    """``metrics.jsonl`` from the history: rewritten whole, so it always matches the checkpoint."""
    atomic_write(run / "metrics.jsonl", "".join(json.dumps(record) + "\n" for record in history).encode())


def save_weights(path: Path, model: nn.Module) -> None:
    state = {name: tensor.detach().cpu().contiguous() for name, tensor in model.state_dict().items()}
    atomic_write(path, save_safetensors(state))


def load_weights(path: Path, model: nn.Module) -> None:
    """Load safetensors weights into ``model``; a file for another network is a ``ValueError`` naming the keys."""
    try:
        state = load_safetensors(path.read_bytes())
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such weight file") from None
    except Exception as error:  # safetensors raises its own error types for damaged headers
        raise ValueError(f"{path}: not a readable safetensors file ({error})") from None
    _load_state(model, state, path)


def _load_state(model: nn.Module, state: dict[str, torch.Tensor], path: Path) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state]
    unexpected = [k for k in state if k not in own]
    mismatched = [f"{k} {tuple(state[k].shape)} vs {tuple(own[k].shape)}" for k in own
                  if k in state and state[k].shape != own[k].shape]
    if missing or unexpected or mismatched:
        details = "; ".join(part for part in (
            f"missing {', '.join(missing[:3])}{' ...' if len(missing) > 3 else ''}" if missing else "",
            f"unexpected {', '.join(unexpected[:3])}{' ...' if len(unexpected) > 3 else ''}" if unexpected else "",
            f"different shapes {', '.join(mismatched[:3])}" if mismatched else "") if part)
        raise ValueError(f"{path}: the weights belong to another network ({details})")
    model.load_state_dict(state)


def save_checkpoint(run: Path, payload: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    atomic_write(run / CHECKPOINT, buffer.getvalue())


def load_checkpoint(run: Path) -> dict[str, Any]:
    """The checkpoint's contents, unpickled with ``weights_only=True`` (tensors and plain values only)."""
    path = run / CHECKPOINT
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no checkpoint; is {run} a cnnkit run directory that finished an epoch?")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # a damaged or foreign file: torch raises several types here
        raise ValueError(f"{path}: not a cnnkit checkpoint ({type(error).__name__}: {error})") from None
    if not isinstance(payload, dict) or "model" not in payload:
        raise ValueError(f"{path}: not a cnnkit checkpoint (no model state)")
    return payload


def restore_model(run: Path, model: nn.Module, state: dict[str, torch.Tensor]) -> None:
    _load_state(model, state, run / CHECKPOINT)
