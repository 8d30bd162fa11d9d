"""Training: ``TrainConfig``, the ``fit`` loop and its ``Callback`` hooks, and ``train``/``resume`` end to end."""

from cnnkit.training.config import TrainConfig
from cnnkit.training.loop import Callback, LoopOptions, TrainingDiverged, TrainState, fit
from cnnkit.training.run import TrainResult, new_state, resume, train

__all__ = ["Callback", "LoopOptions", "TrainConfig", "TrainResult", "TrainState", "TrainingDiverged", "fit",
           "new_state", "resume", "train"]
