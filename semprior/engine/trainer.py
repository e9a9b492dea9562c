"""A small, model-agnostic training loop with exact resume, DDP and a coarse-to-fine patch schedule.

The trainer knows nothing about the model: it calls ``loss_fn(model, batch) -> (total, terms)``
where ``model`` may be wrapped in ``DistributedDataParallel`` (call ``model(...)``, not a method of
the inner module, so gradients are synchronised; reach the inner module with
[`unwrap`][semprior.engine.trainer.unwrap]). Alternating multi-task training (SLLEN) is the same loop with a
[`PhaseSchedule`][semprior.models.phases.PhaseSchedule] in place of ``loss_fn`` and named data sources.

Determinism: the data order of epoch ``e`` of each source is a permutation drawn from ``(seed, source, e)``
(`semprior.engine.sources`); datasets with ``set_epoch`` get the epoch; the phase of step ``s``
is a function of ``s``; the coarse-to-fine crop of step ``s`` uses a generator seeded from
``(seed, s)``; model-side randomness (dropout) uses the global torch RNG, saved in checkpoints.
So a run stopped after ``N`` steps and resumed from its checkpoint continues bit for bit.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from semprior.data.transforms import batch_view
from semprior.engine import checkpoint as C
from semprior.engine import distributed as D
from semprior.engine.curves import plot_curves, require_matplotlib
from semprior.engine.progress import Progress
from semprior.engine.run_log import RunLogWriter
from semprior.engine.schedule import PatchSchedule, build_lr_scheduler
from semprior.engine.sigterm import SigtermFlag
from semprior.engine.sources import DataSources, resolve_sources, to_device
from semprior.engine.train_config import TrainConfig
from semprior.models.phases import Phase, PhaseSchedule, frozen, frozen_per_phase
from semprior.models.protocol import unwrap

__all__ = ["TrainConfig", "Trainer", "unwrap", "seed_everything"]

LossFn = Callable[[nn.Module, Any], "tuple[Tensor, dict[str, Tensor | float]]"]


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


@dataclass
class TrainResult:
    step: int
    stopped_early: bool
    best: float | None
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    seconds: float = 0.0
    out_of_time: bool = False


class Trainer:
    """Train any ``nn.Module`` with ``loss_fn(model, batch) -> (total, terms)``, or with an alternating schedule.

    Args:
        model: the module to train (frozen parts must have ``requires_grad=False``).
        loss_fn: returns the scalar total loss and a dict of (unweighted) terms to log; or a
            [`PhaseSchedule`][semprior.models.phases.PhaseSchedule] (alternating phases, each with its
            own data source, loss and parameters to update; one optimizer and one LR schedule over all).
        train_data: a map-style dataset yielding batches the loss understands; with a
            ``PhaseSchedule``, a mapping ``{source name: dataset}`` covering its sources. Datasets
            with ``set_epoch(epoch)`` are told the epoch (of their own source).
        config: [`TrainConfig`][semprior.engine.train_config.TrainConfig].
        out_dir: where ``last.pt``, ``best.pt`` and ``loss_curve.png`` go (``None`` = nowhere).
        validate: optional ``validate(model) -> {metric: value}`` run on the main process.
        monitor: metric of ``validate`` that selects ``best.pt`` and drives early stopping.
        mode: ``"max"`` or ``"min"`` for ``monitor``.
        extra: more entries for every checkpoint (e.g. ``{"model_config": cfg.to_dict()}``, which
            the ``eval``/``enhance`` CLIs read to rebuild the architecture); plain data only.
        device: defaults to CUDA (local rank) when available, else CPU.
        overwrite: a fresh run (not [`resume`][semprior.engine.trainer.Trainer.resume]d) in an
            ``out_dir`` that already holds a run (``last.pt``, ``best.pt`` or ``log.jsonl``) is refused
            when [`fit`][semprior.engine.trainer.Trainer.fit] starts (a
            [`RunFolderError`][semprior.engine.run_folder.RunFolderError]); ``True`` replaces that run
            (its files are removed first).

    Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) the trainer initialises the process group,
    wraps the model in ``DistributedDataParallel`` (with ``find_unused_parameters`` when a phase
    leaves parameters out) and shards each epoch's permutation.

    Examples:
        >>> net = torch.nn.Conv2d(3, 3, 1)
        >>> data = [{"x": torch.rand(3, 8, 8)} for _ in range(4)]
        >>> loss = lambda m, b: (((m(b["x"]) - b["x"]) ** 2).mean(), {})
        >>> Trainer(net, loss, data, TrainConfig(steps=2, batch_size=2, progress=False)).fit().step
        2
    """

    def __init__(
        self,
        model: nn.Module,
        loss_fn: LossFn | PhaseSchedule,
        train_data: torch.utils.data.Dataset | Mapping[str, torch.utils.data.Dataset],
        config: TrainConfig | None = None,
        out_dir: str | Path | None = None,
        validate: Callable[[nn.Module], dict[str, float]] | None = None,
        monitor: str = "psnr",
        mode: str = "max",
        extra: dict[str, Any] | None = None,
        device: str | torch.device | None = None,
        overwrite: bool = False,
    ) -> None:
        self.config = cfg = config or TrainConfig()
        self.overwrite = bool(overwrite)
        self._claimed = False  # True once this trainer owns out_dir (resumed it, or started it afresh)
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        if cfg.val_every and validate is None:
            raise ValueError(
                "TrainConfig.val_every > 0 needs a validate(model) callable; pass validate=... or set val_every=0"
            )
        if cfg.loss_curve and out_dir is not None:  # fail before training, not after it
            require_matplotlib(
                alternative="or set loss_curve: false under train: in the YAML "
                "(TrainConfig.loss_curve=False) to train without loss_curve.png"
            )
        self.log = RunLogWriter(Path(out_dir) if out_dir is not None else None, cfg.log_file, cfg.tensorboard)
        D.init_distributed()
        self.rank, self.world = D.rank(), D.world_size()
        if device is None:
            device = (
                torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
            )
        self.device = torch.device(device)
        self.model = model.to(self.device)
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters (all requires_grad=False)")
        self.loss_fn = loss_fn  # a plain loss_fn may be swapped later (tests do); phases carry their own
        self.schedule, sources = resolve_sources(loss_fn, train_data)
        self._frozen = frozen_per_phase(self.schedule, model, params)
        self.net: nn.Module = model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(
                model, device_ids=ids, find_unused_parameters=self.schedule.restricts_parameters
            )
        self.data = train_data
        self.sources = DataSources(
            sources,
            cfg.batch_size,
            cfg.seed,
            self.rank,
            self.world,
            cfg.num_workers,
            pin_memory=self.device.type == "cuda",
        )
        self.rank_batch = self.sources.rank_batch
        self.per_rank_batches = self.sources.per_rank_batches[self.schedule.sources[0]]
        if cfg.epochs:
            if len(sources) > 1:
                raise ValueError(
                    "TrainConfig.epochs counts passes over one dataset; with several data sources "
                    "(a multi-source PhaseSchedule) set train.steps instead"
                )
            from dataclasses import replace

            self.config = cfg = replace(cfg, steps=max(1, math.ceil(cfg.epochs * self.per_rank_batches)))
        cfg.check_device(self.device)
        self.scaler = torch.amp.GradScaler("cuda") if cfg.precision == "fp16" else None
        self.ema: dict[str, Tensor] | None = None
        if cfg.ema_decay:
            self.ema = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
        self.optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        self.scheduler = build_lr_scheduler(
            self.optimizer,
            cfg.lr_schedule,
            cfg.steps,
            cfg.warmup_steps,
            cfg.min_lr_ratio,
            cfg.restart_periods,
            cfg.restart_min_lrs,
        )
        self.patches = PatchSchedule(cfg.patch_stages)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.validate_fn, self.monitor, self.mode = validate, monitor, mode
        self.extra = C.check_extra(extra)
        self.step = 0
        self._updating = False
        self.best: float | None = None
        self.bad_evals = 0
        self.curves: dict[str, list[tuple[int, float]]] = {}

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """The full training state (`semprior.engine.checkpoint.trainer_state`)."""
        return C.trainer_state(self)

    def load_state_dict(self, state: dict[str, Any], allow_changed: bool = False) -> None:
        """Restore a trainer checkpoint; a config that differs from the recorded one is refused
        (see [`restore_trainer_state`][semprior.engine.checkpoint.restore_trainer_state])."""
        C.restore_trainer_state(self, state, allow_changed)

    def save(self, path: str | Path) -> Path | None:
        """Atomically write the full training state (main process only)."""
        if not D.is_main():
            return None
        return C.save_checkpoint(self.state_dict(), path)

    def resume(self, path: str | Path, allow_changed: bool = False) -> None:
        """Restore a checkpoint written by [`save`][semprior.engine.trainer.Trainer.save];
        [`fit`][semprior.engine.trainer.Trainer.fit] then continues exactly.

        A config that differs from the one the checkpoint recorded is refused, listing the
        fields, unless ``allow_changed`` (see [`load_state_dict`][semprior.engine.trainer.Trainer.load_state_dict]).
        """
        self.load_state_dict(C.load_checkpoint(path, map_location=self.device), allow_changed=allow_changed)
        self._claimed = True

    # ---------------------------------------------------------------- loop
    def train_step(self, batch: Any, phase: Phase | None = None) -> tuple[float, dict[str, float]]:
        """One optimisation step on ``batch`` (already on the device); returns the loss and its terms.

        ``phase`` defaults to the schedule's phase of the current step; only its parameters change.
        """
        phase = phase if phase is not None else self.schedule.phase(self.step)
        with frozen(self._frozen[phase.name]):
            return self._step(batch, phase)

    def _step(self, batch: Any, phase: Phase) -> tuple[float, dict[str, float]]:
        cfg = self.config
        self.net.train()
        view = self.patches.view(self.step) if phase.crop else None
        if view is not None:
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.step)
            batch = batch_view(
                batch, *view, generator=gen, multiple=int(getattr(unwrap(self.net), "required_multiple", 1))
            )
        loss_fn = self.loss_fn if not isinstance(self.loss_fn, PhaseSchedule) else phase.loss_fn
        if cfg.precision == "fp32":
            total, terms = loss_fn(self.net, batch)
        else:
            dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float16
            with torch.autocast(self.device.type, dtype=dtype):
                total, terms = loss_fn(self.net, batch)
            total = total.float()
        if not isinstance(total, Tensor) or total.dim() != 0:
            raise TypeError("loss_fn must return (scalar tensor, dict of terms)")
        if not torch.isfinite(total):
            where = "" if len(self.schedule.phases) == 1 else f" (phase {phase.name!r})"
            raise FloatingPointError(
                f"loss became {float(total)} at step {self.step}{where}; lower lr or check the data"
            )
        self._updating = True  # from here to the step count the state is half-updated: never saved
        self.optimizer.zero_grad(set_to_none=True)
        params = [p for g in self.optimizer.param_groups for p in g["params"]]
        if self.scaler is not None:
            self.scaler.scale(total).backward()
            self.scaler.unscale_(self.optimizer)
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            self.scaler.step(self.optimizer)
            self.scaler.update()
        else:
            total.backward()
            if cfg.grad_clip > 0:
                nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            self.optimizer.step()
        self.scheduler.step()
        self._update_ema()
        self.step += 1
        self._updating = False
        return float(total.detach()), {k: float(v) for k, v in terms.items()}

    # ---------------------------------------------------------------- weight average
    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.ema is None:
            return
        d = self.config.ema_decay
        if self.config.ema_warmup:
            d = min(d, (1 + self.step) / (10 + self.step))
        for k, v in unwrap(self.net).state_dict().items():
            if k in self.ema:
                self.ema[k].lerp_(v.detach(), 1.0 - d)

    def eval_state_dict(self) -> dict[str, Tensor]:
        """The weights to validate and export: the moving average when ``ema_decay > 0``, else the raw ones."""
        raw = unwrap(self.net).state_dict()
        if self.ema is None:
            return raw
        return {k: self.ema.get(k, v) for k, v in raw.items()}

    # ---------------------------------------------------------------- log
    def _log(self, record: dict[str, Any]) -> None:
        self.log.write(record, multi_phase=len(self.schedule.phases) > 1)

    def _claim_out_dir(self) -> None:
        """Before the first step of a fresh run: refuse an ``out_dir`` holding a run, unless ``overwrite``."""
        if self._claimed or self.out_dir is None:
            return
        from semprior.engine.run_folder import check_run_folder, clear_run_folder, existing_run_files

        check_run_folder(self.out_dir, overwrite=self.overwrite)
        if self.overwrite and existing_run_files(self.out_dir) and D.is_main():
            clear_run_folder(self.out_dir)
        self._claimed = True

    def _validate(self) -> bool:
        """Run validation (on the averaged weights when EMA is on); returns True when training should stop early."""
        assert self.validate_fn is not None
        stop = False
        if D.is_main():
            model = unwrap(self.net)
            was_training = model.training
            weights = self.eval_state_dict()
            raw = {k: v.detach().clone() for k, v in model.state_dict().items()} if self.ema is not None else None
            if raw is not None:
                model.load_state_dict(weights)
            model.eval()
            try:
                with torch.no_grad():
                    metrics = self.validate_fn(model)
            finally:
                if raw is not None:
                    model.load_state_dict(raw)
                model.train(was_training)
            for k, v in metrics.items():
                self.curves.setdefault(f"val/{k}", []).append((self.step, float(v)))
            self._log({"step": self.step, **{f"val/{k}": float(v) for k, v in metrics.items()}})
            if self.monitor not in metrics:
                raise KeyError(
                    f"validate() returned {sorted(metrics)}, which lacks the monitored metric {self.monitor!r}"
                )
            score = float(metrics[self.monitor])
            better = self.best is None or (score > self.best if self.mode == "max" else score < self.best)
            if better:
                self.best, self.bad_evals = score, 0
                if self.out_dir is not None:
                    C.save_checkpoint(C.best_state(self, weights, self.monitor, score), self.out_dir / "best.pt")
            else:
                self.bad_evals += 1
            stop = bool(self.config.early_stop_patience and self.bad_evals >= self.config.early_stop_patience)
        if self.world > 1:
            flag = torch.tensor([int(stop)], device=self.device)
            torch.distributed.broadcast(flag, 0)
            stop = bool(flag.item())
        return stop

    def fit(self, steps: int | None = None, max_seconds: float | None = None) -> TrainResult:
        """Train until ``config.steps`` (or ``steps`` more steps, whichever comes first).

        ``max_seconds`` stops earlier once that much wall time has passed (a time budget; the LR
        schedule still assumes ``config.steps``). ``last.pt`` is written when training stops, also
        on an exception or Ctrl-C (then the exception propagates after the save). SIGTERM (what
        ``kill``, job schedulers and session ends send) stops training at the next step boundary,
        writes ``last.pt``, then hands the signal on to the handler that was installed before
        (by default: the process exits with status 143).
        """
        cfg = self.config
        end = cfg.steps if steps is None else min(cfg.steps, self.step + int(steps))
        self._claim_out_dir()
        self.log.trim(self.step)
        multi = len(self.schedule.phases) > 1
        bar = Progress(cfg.steps, self.step, cfg.progress, D.is_main(), multi)
        t0, c0, stopped, out_of_time = time.perf_counter(), time.process_time(), False, False
        iters: dict[str, Any] = {}  # each source's iterator, started at the batches it has already given
        term = SigtermFlag()
        try:
            while self.step < end:
                phase = self.schedule.phase(self.step)
                if phase.source not in iters:
                    iters[phase.source] = self.sources.batches(
                        phase.source, self.schedule.count(self.step, source=phase.source)
                    )
                batch = to_device(next(iters[phase.source]), self.device)
                loss, terms = self.train_step(batch, phase)
                # log_every counts the steps of each phase (with one phase: every log_every-th step)
                if self.schedule.count(self.step, phase=phase.name) % cfg.log_every == 0 or self.step == end:
                    pre = f"{phase.name}/" if multi else ""
                    self.curves.setdefault(f"{pre}loss", []).append((self.step, loss))
                    for k, v in terms.items():
                        self.curves.setdefault(f"{pre}{k}", []).append((self.step, v))
                    self._log(
                        {
                            "step": self.step,
                            "phase": phase.name,
                            "loss": loss,
                            **terms,
                            "lr": self.scheduler.get_last_lr()[0],
                            "patch": self.patches.patch_size(self.step - 1) if phase.crop else None,
                            "seconds": round(time.perf_counter() - t0, 3),
                            "cpu_seconds": round(time.process_time() - c0, 3),
                        }
                    )
                    bar.logged(self.step, pre, loss, terms, float(self.scheduler.get_last_lr()[0]), t0)
                bar.update(phase.name, loss, float(self.scheduler.get_last_lr()[0]))
                if cfg.val_every and self.step % cfg.val_every == 0:
                    stopped = self._validate()
                if self.out_dir is not None and cfg.ckpt_every and self.step % cfg.ckpt_every == 0:
                    self.save(self.out_dir / "last.pt")
                if stopped:
                    break
                if term.is_set(self.world, self.device):
                    break
                if max_seconds is not None:
                    over = time.perf_counter() - t0 > max_seconds
                    if self.world > 1:  # rank 0's clock decides, so every rank stops at the same step
                        flag = torch.tensor([int(over)], device=self.device)
                        torch.distributed.broadcast(flag, 0)
                        over = bool(flag.item())
                    if over:
                        out_of_time = True
                        break
        except BaseException:
            # an error or Ctrl-C: keep what was trained, unless it struck inside a weight update
            # (then the last periodic checkpoint is the consistent state, and it stays)
            if self.out_dir is not None and D.is_main() and self.step > 0 and not self._updating:
                self.save(self.out_dir / "last.pt")
            raise
        finally:
            term.restore()
            bar.close()
        if term.received:
            if self.out_dir is not None and D.is_main():
                self.save(self.out_dir / "last.pt")
            term.pass_on()
        validated = self.curves.get(f"val/{self.monitor}", [])
        if (
            cfg.val_every
            and self.step == cfg.steps
            and not stopped
            and (not validated or validated[-1][0] != self.step)
        ):
            self._validate()  # the end of the schedule is always scored, so best.pt exists after any full run
        if self.out_dir is not None and D.is_main():
            self.save(self.out_dir / "last.pt")
            if cfg.loss_curve and any(len(v) for v in self.curves.values()):
                plot_curves(self.curves, self.out_dir / "loss_curve.png")
        self.log.close()
        return TrainResult(self.step, stopped, self.best, dict(self.curves), time.perf_counter() - t0, out_of_time)

    def __repr__(self) -> str:
        return (
            f"Trainer(step={self.step}/{self.config.steps}, world={self.world}, device={self.device}, "
            f"patches={self.patches})"
        )
