"""``evaluate(run)``: a trained run on its evaluation split, with metrics.json and figures in the run directory."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from cnnkit.runs import Run
from cnnkit.runtime import choose

if TYPE_CHECKING:
    from cnnkit.tasks import Result


def evaluate(run: str | Path | Run, *, data: str | None = None, data_dir: str | None = None, device: str = "auto",
             figures: bool = True) -> Result:
    """Evaluate the run's network on the split it was validated on (the official test split when there is one).

    ``data`` evaluates on another dataset with the same classes and image shape
    (for reconstruction and denoising: the same image shape). Writes
    ``metrics.json`` and, with ``figures``, the task's figures into the run
    directory, each listed in the result's ``files``: ``confusion_matrix.png`` and
    ``mistakes.png`` (classify); ``segmentation.png``, ``segmentation_mistakes.png``
    and ``confusion_matrix.png`` of pixels (segment); ``denoising.png`` or
    ``reconstructions.png`` (denoise, reconstruct).
    """
    from cnnkit.tasks import EvalContext, make_task, task_class

    opened = Run.open(run)
    card = opened.card
    runtime = choose(device, "fp32", False)
    model = opened.network().to(runtime.device)  # first: it checks the card's network against its task and classes
    held_out, split = opened.held_out(data, data_dir)
    tta = "tta" in task_class(card.task).options and bool(opened.config().get("tta", False))
    task = make_task(card.task, card.noise, tta=tta)
    seed = card.data.seed if card.data is not None else 0
    title = f"{card.name} on {data or (card.data.name if card.data else '?')} ({split}"
    context = EvalContext(list(card.class_names), split, seed, opened.folder if figures else None, title)
    result = task.evaluate_split(model, held_out, card.batch_transform(), runtime, context)
    result.files["metrics"] = str(opened.folder / "metrics.json")
    opened.write_metrics(result.as_dict())
    return result
