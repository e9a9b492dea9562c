"""Training hyper-parameters: :class:`TrainConfig` (YAML maps 1:1 onto it), read by the trainer."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from semprior.engine.schedule import PatchSchedule

__all__ = ["TrainConfig"]


@dataclass(frozen=True)
class TrainConfig:
    """Training hyper-parameters (YAML maps 1:1 onto these fields).

    Attributes:
        steps: total optimisation steps (replaced by the count derived from ``epochs`` when that is set).
        epochs: when ``> 0``, train this many passes over the training set: ``steps`` becomes
            ``ceil(epochs * (len(data) // batch_size))``, fixed when the trainer is built and recorded
            in every checkpoint (the paper: 500 epochs of LOL-v1 at batch 16).
        batch_size: the **global** batch size (the paper's 16 by default). Under DDP every process
            takes ``batch_size / world_size`` items (it must divide evenly), so a run on 4 GPUs
            optimises the same batch of 16 as a run on one.
        lr: Adam learning rate (3e-4 as the paper).
        betas: Adam betas.
        weight_decay: Adam weight decay.
        lr_schedule: ``"cosine"`` (to ``min_lr_ratio * lr``), ``"constant"`` or ``"cosine_restarts"``
            (BasicSR's cyclic cosine, Retinexformer's recipe: ``restart_periods`` steps each, annealing to
            the absolute ``restart_min_lrs``).
        warmup_steps: linear warm-up steps.
        min_lr_ratio: final learning rate as a fraction of ``lr`` (cosine).
        grad_clip: max global gradient norm; ``0`` disables clipping.
        patch_stages: coarse-to-fine schedule, ``((start_step, patch), ...)`` or
            ``((start_step, patch, scale), ...)``: from each start step, batches are resized by
            ``scale`` (default 1) and cropped to ``patch`` (0 = the whole frame); empty = no cropping.
            See [`PatchSchedule`][semprior.engine.schedule.PatchSchedule].
        seed: seed for parameters (via [`seed_everything`][semprior.engine.trainer.seed_everything]), data order and
            crops.
        num_workers: DataLoader workers.
        log_every: steps between loss-curve points.
        ckpt_every: steps between checkpoints of ``last.pt`` (``0`` = only at the end). Whatever
            this is, ``last.pt`` is also written when training stops on an exception or Ctrl-C.
        ema_decay: exponential moving average of the weights (``0`` = off, e.g. ``0.999``). The
            average is saved beside the raw weights (``ema`` in ``last.pt``), and it is what
            validation scores and what ``best.pt`` holds.
        ema_warmup: ramp the decay up as ``min(ema_decay, (1 + step) / (10 + step))`` (timm's
            warm-up), so the average is not dominated by the initial weights early in training.
            Without it, after ``s`` steps the initial weights still weigh ``ema_decay ** s``.
        precision: ``"fp32"``, or mixed precision: ``"bf16"`` (autocast on CUDA or the CPU; the
            weights, the optimizer and the loss stay float32) / ``"fp16"`` (CUDA only; adds a gradient
            scaler). On a CPU with native bf16 (``avx512_bf16`` or AMX) a bf16 step costs about 0.6x an
            fp32 step (docs/train.md, "Faster steps on the CPU"); on other CPUs bf16 is emulated and slower.
        log_file: write one JSON line per logged step (loss, each term, lr, patch) and per
            validation to ``out_dir/log.jsonl``.
        val_every: steps between validations (``0`` = never; needs a ``validate`` callable).
        early_stop_patience: stop after this many validations without improvement (``0`` = never).
        progress: show a tqdm progress bar (main process only); without it, one line per
            ``log_every`` steps goes to stderr (step, loss and its terms, lr, seconds).
        loss_curve: draw ``out_dir/loss_curve.png`` at the end of the run. It needs matplotlib
            (``pip install 'semprior[plot]'``): with ``True`` and no matplotlib the trainer refuses
            to start (an ``ImportError`` naming the extra and this option); ``False`` never imports
            matplotlib. The curve values stay in every checkpoint (``curves``) and, with ``log_file``,
            in ``log.jsonl``.
        tensorboard: also write every logged value (loss, terms, lr, validation scores) as
            TensorBoard scalars to ``out_dir/tensorboard`` (``tensorboard --logdir OUT``). Needs
            the ``tensorboard`` package (``pip install 'semprior[tensorboard]'``); the trainer
            refuses to start without it. Default ``False``.
    """

    steps: int = 1000
    epochs: float = 0.0
    batch_size: int = 16
    lr: float = 3e-4
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 0.0
    lr_schedule: str = "cosine"
    warmup_steps: int = 0
    min_lr_ratio: float = 0.01
    restart_periods: tuple[int, ...] = ()
    restart_min_lrs: tuple[float, ...] = ()
    grad_clip: float = 1.0
    patch_stages: tuple[tuple, ...] = ()
    seed: int = 0
    num_workers: int = 0
    log_every: int = 10
    ckpt_every: int = 200
    ema_decay: float = 0.0
    ema_warmup: bool = True
    precision: str = "fp32"
    log_file: bool = True
    val_every: int = 0
    early_stop_patience: int = 0
    progress: bool = True
    loss_curve: bool = True
    tensorboard: bool = False

    def __post_init__(self) -> None:
        object.__setattr__(self, "betas", tuple(float(b) for b in self.betas))
        object.__setattr__(self, "patch_stages", tuple(PatchSchedule(self.patch_stages).stages))
        for name in ("steps", "batch_size", "log_every"):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"TrainConfig.{name} must be >= 1, got {getattr(self, name)}")
        for name in ("warmup_steps", "num_workers", "ckpt_every", "val_every", "early_stop_patience"):
            if int(getattr(self, name)) < 0:
                raise ValueError(f"TrainConfig.{name} must be >= 0, got {getattr(self, name)}")
        if not self.lr > 0:
            raise ValueError(f"TrainConfig.lr must be > 0, got {self.lr}")
        if self.grad_clip < 0:
            raise ValueError(f"TrainConfig.grad_clip must be >= 0 (0 = off), got {self.grad_clip}")
        if not 0 <= self.ema_decay < 1:
            raise ValueError(f"TrainConfig.ema_decay must be in [0, 1) (0 = off), got {self.ema_decay}")
        if self.epochs < 0:
            raise ValueError(f"TrainConfig.epochs must be >= 0 (0 = use steps), got {self.epochs}")
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise ValueError(f"TrainConfig.precision must be 'fp32', 'bf16' or 'fp16', got {self.precision!r}")
        if self.lr_schedule not in ("cosine", "constant", "cosine_restarts"):
            raise ValueError(
                f"TrainConfig.lr_schedule must be 'cosine', 'constant' or 'cosine_restarts', got {self.lr_schedule!r}"
            )
        object.__setattr__(self, "restart_periods", tuple(int(v) for v in self.restart_periods))
        object.__setattr__(self, "restart_min_lrs", tuple(float(v) for v in self.restart_min_lrs))

    def check_device(self, device: torch.device) -> None:
        """Refuse a ``precision`` the device cannot run (fp16 needs CUDA; bf16 CUDA or the CPU)."""
        if self.precision == "fp16" and device.type != "cuda":
            raise ValueError(
                f"precision='fp16' is mixed precision on CUDA; this run is on {device.type}: "
                "use precision: bf16 (autocast on the CPU) or fp32 here"
            )
        if self.precision == "bf16" and device.type not in ("cuda", "cpu"):
            raise ValueError(f"precision='bf16' runs on CUDA or the CPU, not {device.type}; use precision: fp32")
