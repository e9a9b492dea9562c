"""Training engine: a model-agnostic [`Trainer`][semprior.engine.trainer.Trainer] (one loss or alternating
[`PhaseSchedule`][semprior.models.phases.PhaseSchedule]s), atomic checkpoints, schedules, DDP helpers, curves."""

from semprior.engine.checkpoint import load_checkpoint, save_checkpoint
from semprior.engine.curves import plot_curves
from semprior.engine.schedule import PatchSchedule, build_lr_scheduler
from semprior.engine.trainer import TrainConfig, Trainer, TrainResult, seed_everything, unwrap
from semprior.models.phases import Phase, PhaseSchedule

__all__ = [
    "PatchSchedule",
    "Phase",
    "PhaseSchedule",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "build_lr_scheduler",
    "load_checkpoint",
    "plot_curves",
    "save_checkpoint",
    "seed_everything",
    "unwrap",
]
