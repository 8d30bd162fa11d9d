"""What a network learns: one module per task, registered here by its ``--task`` word.

::

    task         input -> target                              loss                   metrics
    classify     image -> class (N,)                          cross-entropy          accuracy, per class, confusion
    segment      image -> class per pixel (N, H, W)           cross-entropy + Dice   pixel accuracy, mean IoU, Dice
    reconstruct  image -> the same image on [0, 1]            mean squared error     PSNR, SSIM
    denoise      corrupted image -> the clean image on [0, 1] mean squared error     PSNR, SSIM (noisy vs denoised)
    localize     image -> class and box (N, 5)                cross-entropy + L1+GIoU accuracy, mean IoU, loc accuracy
    detect       image -> objects: class and box each (N, M, 5) CenterNet focal + L1 COCO mAP (pycocotools), F1
    instance     image -> objects: a mask each (N, M, H, W)   detect's + BCE + Dice  box and mask mAP (pycocotools)

Adding a task is one module with a :class:`~cnnkit.tasks.base.Task` subclass,
and one line in :data:`TASKS` (docs/tasks.md walks through it). Training,
evaluation, prediction, the report and transfer reach it through
:func:`make_task`.
"""

from __future__ import annotations

from cnnkit.tasks.base import EvalContext, Prediction, Result, Task
from cnnkit.tasks.classify import Classify
from cnnkit.tasks.denoise import Denoise
from cnnkit.tasks.detect import Detect
from cnnkit.tasks.instance import Instance
from cnnkit.tasks.localize import Localize
from cnnkit.tasks.reconstruct import Reconstruct
from cnnkit.tasks.segment import Segment

TASKS: dict[str, type[Task]] = {task.name: task for task in (Classify, Segment, Reconstruct, Denoise, Localize, Detect,
                                                              Instance)}

__all__ = ["TASKS", "Classify", "Denoise", "Detect", "EvalContext", "Instance", "Localize", "Prediction", "Reconstruct",
           "Result", "Segment", "Task", "make_task", "names", "task_class"]


def names() -> list[str]:
    """The ``--task`` words, in registration order."""
    return list(TASKS)


def task_class(name: str) -> type[Task]:
    """The class registered as ``name``; an unknown word is a ValueError naming the choices."""
    if name not in TASKS:
        raise ValueError(f"unknown task {name!r}; choose from {', '.join(TASKS)}. Received: --task {name}")
    return TASKS[name]


def make_task(name: str, noise: str | None = None, tta: bool = False) -> Task:
    """The task called ``name`` with its options: ``noise`` (denoise's corruption, e.g. ``gaussian:0.3``) and
    ``tta`` (classify: evaluate each image and its mirror image).

    >>> str(make_task("denoise", noise="gaussian:0.3"))
    'denoise gaussian:0.3'
    """
    return task_class(name)(noise=noise, tta=tta)
