"""Training: ``TrainConfig``, the ``fit`` loop, and ``train``/``resume`` that run it end to end."""

from cnnkit.training.config import TrainConfig
from cnnkit.training.loop import TrainingDiverged, TrainState, fit
from cnnkit.training.run import TrainResult, resume, train

__all__ = ["TrainConfig", "TrainResult", "TrainState", "TrainingDiverged", "fit", "resume", "train"]
