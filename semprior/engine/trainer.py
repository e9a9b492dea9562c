"""A small, model-agnostic training loop with exact resume, DDP and a coarse-to-fine patch schedule.

The trainer knows nothing about the model: it calls ``loss_fn(model, batch) -> (total, terms)``
where ``model`` may be wrapped in ``DistributedDataParallel`` (call ``model(...)``, not a method of
the inner module, so gradients are synchronised; reach the inner module with [`unwrap`][semprior.engine.trainer.unwrap]).

Determinism: the data order of epoch ``e`` is a permutation drawn from ``seed + e``; datasets with
``set_epoch`` get the epoch; the coarse-to-fine crop of step ``s`` uses a generator seeded from
``(seed, s)``; model-side randomness (dropout) uses the global torch RNG, saved in checkpoints.
So a run stopped after ``N`` steps and resumed from its checkpoint continues bit for bit.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from semprior.data.transforms import batch_random_crop
from semprior.engine import distributed as D
from semprior.engine.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from semprior.engine.curves import plot_curves
from semprior.engine.schedule import PatchSchedule, build_lr_scheduler
from semprior.engine.train_config import TrainConfig

__all__ = ["TrainConfig", "Trainer", "unwrap", "seed_everything"]

LossFn = Callable[[nn.Module, Any], "tuple[Tensor, dict[str, Tensor | float]]"]


def unwrap(model: nn.Module) -> nn.Module:
    """The inner module of a ``DistributedDataParallel`` / ``DataParallel`` wrapper (or the model itself)."""
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices)."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


class _EpochSampler(torch.utils.data.Sampler[int]):
    """Permutation of epoch ``e`` from ``seed + e``, split across ranks, optionally skipping a prefix."""

    def __init__(self, n: int, seed: int, epoch: int, rank: int, world: int, per_rank: int, skip: int = 0) -> None:
        g = torch.Generator().manual_seed(seed * 100_003 + epoch)
        perm = torch.randperm(n, generator=g).tolist()
        self.indices = perm[rank::world][:per_rank][skip:]

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: _to_device(v, device) for k, v in batch.items()}
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


@dataclass
class TrainResult:
    step: int
    stopped_early: bool
    best: float | None
    curves: dict[str, list[tuple[int, float]]] = field(default_factory=dict)
    seconds: float = 0.0
    out_of_time: bool = False


class Trainer:
    """Train any ``nn.Module`` with ``loss_fn(model, batch) -> (total, terms)``.

    Args:
        model: the module to train (frozen parts must have ``requires_grad=False``).
        loss_fn: returns the scalar total loss and a dict of (unweighted) terms to log.
        train_data: a map-style dataset yielding batches the loss understands; datasets with
            ``set_epoch(epoch)`` are told the epoch.
        config: [`TrainConfig`][semprior.engine.train_config.TrainConfig].
        out_dir: where ``last.pt``, ``best.pt`` and ``loss_curve.png`` go (``None`` = nowhere).
        validate: optional ``validate(model) -> {metric: value}`` run on the main process.
        monitor: metric of ``validate`` that selects ``best.pt`` and drives early stopping.
        mode: ``"max"`` or ``"min"`` for ``monitor``.
        extra: more entries for every checkpoint (e.g. ``{"model_config": cfg.to_dict()}``, which
            the ``eval``/``enhance`` CLIs read to rebuild the architecture); plain data only.
        device: defaults to CUDA (local rank) when available, else CPU.

    Under ``torchrun`` (``RANK``/``WORLD_SIZE`` set) the trainer initialises the process group,
    wraps the model in ``DistributedDataParallel`` and shards each epoch's permutation.

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
        loss_fn: LossFn,
        train_data: torch.utils.data.Dataset,
        config: TrainConfig | None = None,
        out_dir: str | Path | None = None,
        validate: Callable[[nn.Module], dict[str, float]] | None = None,
        monitor: str = "psnr",
        mode: str = "max",
        extra: dict[str, Any] | None = None,
        device: str | torch.device | None = None,
    ) -> None:
        self.config = cfg = config or TrainConfig()
        if mode not in ("max", "min"):
            raise ValueError(f"mode must be 'max' or 'min', got {mode!r}")
        if cfg.val_every and validate is None:
            raise ValueError("TrainConfig.val_every > 0 needs a validate(model) callable; pass validate=... or set val_every=0")
        D.init_distributed()
        self.rank, self.world = D.rank(), D.world_size()
        if device is None:
            device = torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
        self.device = torch.device(device)
        self.model = model.to(self.device)
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError("the model has no trainable parameters (all requires_grad=False)")
        self.net: nn.Module = model
        if self.world > 1:
            ids = [self.device.index] if self.device.type == "cuda" else None
            self.net = nn.parallel.DistributedDataParallel(model, device_ids=ids)
        self.loss_fn = loss_fn
        self.data = train_data
        if cfg.batch_size % self.world:
            raise ValueError(
                f"batch_size={cfg.batch_size} is the global batch and must divide evenly over {self.world} processes; "
                f"use a multiple of {self.world}"
            )
        self.rank_batch = cfg.batch_size // self.world
        n = len(train_data)  # type: ignore[arg-type]
        self.per_rank_batches = n // cfg.batch_size
        if self.per_rank_batches < 1:
            raise ValueError(
                f"the dataset has {n} items, fewer than the global batch_size={cfg.batch_size}; "
                "lower batch_size or give the dataset a larger length"
            )
        if cfg.epochs:
            from dataclasses import replace

            self.config = cfg = replace(cfg, steps=max(1, math.ceil(cfg.epochs * self.per_rank_batches)))
        if cfg.precision != "fp32" and self.device.type != "cuda":
            raise ValueError(
                f"precision={cfg.precision!r} is mixed precision on CUDA; this run is on {self.device.type}: "
                "use precision: fp32 here (the CPU trains in float32)"
            )
        self.scaler = torch.amp.GradScaler("cuda") if cfg.precision == "fp16" else None
        self.ema: dict[str, Tensor] | None = None
        if cfg.ema_decay:
            self.ema = {k: v.detach().clone() for k, v in model.state_dict().items() if v.is_floating_point()}
        self.optimizer = torch.optim.Adam(params, lr=cfg.lr, betas=cfg.betas, weight_decay=cfg.weight_decay)
        self.scheduler = build_lr_scheduler(self.optimizer, cfg.lr_schedule, cfg.steps, cfg.warmup_steps, cfg.min_lr_ratio,
                                            cfg.restart_periods, cfg.restart_min_lrs)
        self.patches = PatchSchedule(cfg.patch_stages)
        self.out_dir = Path(out_dir) if out_dir is not None else None
        self.validate_fn, self.monitor, self.mode = validate, monitor, mode
        self.extra = dict(extra or {})
        clash = set(self.extra) & {"format", "model", "optimizer", "scheduler", "step", "best", "bad_evals", "curves", "rng", "train_config"}
        if clash:
            raise ValueError(f"extra checkpoint keys {sorted(clash)} clash with the trainer's own entries; rename them")
        self.step = 0
        self._updating = False
        self.best: float | None = None
        self.bad_evals = 0
        self.curves: dict[str, list[tuple[int, float]]] = {}

    # ---------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {
            "format": "semprior-trainer-v1",
            "model": unwrap(self.net).state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "step": self.step,
            "best": self.best,
            "bad_evals": self.bad_evals,
            "curves": {k: [list(p) for p in v] for k, v in self.curves.items()},
            "rng": capture_rng_state(),
            "train_config": asdict(self.config),
            **({"ema": self.ema} if self.ema is not None else {}),
            **({"scaler": self.scaler.state_dict()} if self.scaler is not None else {}),
            **self.extra,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("format") != "semprior-trainer-v1":
            raise ValueError("not a semprior trainer checkpoint (missing format 'semprior-trainer-v1')")
        unwrap(self.net).load_state_dict(state["model"], strict=True)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.step = int(state["step"])
        self.best = state["best"]
        self.bad_evals = int(state["bad_evals"])
        self.curves = {k: [(int(p[0]), float(p[1])) for p in v] for k, v in state["curves"].items()}
        if self.ema is not None:
            if "ema" not in state:
                raise ValueError("this run averages weights (ema_decay > 0) but the checkpoint has no 'ema'; "
                                 "resume with the ema_decay it was trained with")
            self.ema = {k: v.to(self.device) for k, v in state["ema"].items()}
        if self.scaler is not None and "scaler" in state:
            self.scaler.load_state_dict(state["scaler"])
        restore_rng_state(state["rng"])

    def save(self, path: str | Path) -> Path | None:
        """Atomically write the full training state (main process only)."""
        if not D.is_main():
            return None
        return save_checkpoint(self.state_dict(), path)

    def resume(self, path: str | Path) -> None:
        """Restore a checkpoint written by [`save`][semprior.engine.trainer.Trainer.save]; [`fit`][semprior.engine.trainer.Trainer.fit] then continues exactly."""
        self.load_state_dict(load_checkpoint(path, map_location=self.device))

    # ---------------------------------------------------------------- loop
    def _batches(self) -> Iterator[Any]:
        cfg = self.config
        while True:
            epoch, offset = divmod(self.step, self.per_rank_batches)
            if hasattr(self.data, "set_epoch"):
                self.data.set_epoch(epoch)  # type: ignore[attr-defined]
            sampler = _EpochSampler(
                len(self.data), cfg.seed, epoch, self.rank, self.world,  # type: ignore[arg-type]
                self.per_rank_batches * self.rank_batch, skip=offset * self.rank_batch,
            )
            loader = torch.utils.data.DataLoader(
                self.data, batch_size=self.rank_batch, sampler=sampler, drop_last=True,
                num_workers=cfg.num_workers, pin_memory=self.device.type == "cuda",
                generator=torch.Generator().manual_seed(cfg.seed * 100_003 + epoch),  # keeps the global RNG untouched
            )
            yield from loader

    def train_step(self, batch: Any) -> tuple[float, dict[str, float]]:
        """One optimisation step on ``batch`` (already on the device); returns the loss and its terms."""
        cfg = self.config
        self.net.train()
        size = self.patches.patch_size(self.step)
        if size is not None:
            gen = torch.Generator().manual_seed(cfg.seed * 1_000_003 + self.step)
            batch = batch_random_crop(batch, size, gen)
        if cfg.precision == "fp32":
            total, terms = self.loss_fn(self.net, batch)
        else:
            dtype = torch.bfloat16 if cfg.precision == "bf16" else torch.float16
            with torch.autocast("cuda", dtype=dtype):
                total, terms = self.loss_fn(self.net, batch)
            total = total.float()
        if not isinstance(total, Tensor) or total.dim() != 0:
            raise TypeError("loss_fn must return (scalar tensor, dict of terms)")
        if not torch.isfinite(total):
            raise FloatingPointError(f"loss became {float(total)} at step {self.step}; lower lr or check the data")
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
        if self.out_dir is None or not self.config.log_file or not D.is_main():
            return
        self.out_dir.mkdir(parents=True, exist_ok=True)
        with open(self.out_dir / "log.jsonl", "a") as f:
            f.write(json.dumps(record) + "\n")

    def _trim_log(self) -> None:
        """After a resume, drop log lines past the resumed step (they are recomputed exactly)."""
        path = self.out_dir / "log.jsonl" if self.out_dir is not None else None
        if path is None or not path.is_file() or not D.is_main():
            return
        from semprior._atomic import atomic_write_text

        keep = []
        for ln in path.read_text().splitlines():
            try:
                rec = json.loads(ln)
            except json.JSONDecodeError:  # a line torn by a kill mid-append: drop it
                continue
            if isinstance(rec, dict) and rec.get("step", 0) <= self.step:
                keep.append(ln)
        atomic_write_text(path, "".join(ln + "\n" for ln in keep))

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
                raise KeyError(f"validate() returned {sorted(metrics)}, which lacks the monitored metric {self.monitor!r}")
            score = float(metrics[self.monitor])
            better = self.best is None or (score > self.best if self.mode == "max" else score < self.best)
            if better:
                self.best, self.bad_evals = score, 0
                if self.out_dir is not None:
                    save_checkpoint({"model": weights, "step": self.step, self.monitor: score,
                                     "ema": self.ema is not None, **self.extra}, self.out_dir / "best.pt")
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
        self._trim_log()
        bar = None
        if cfg.progress and D.is_main():
            from tqdm.auto import tqdm

            bar = tqdm(total=cfg.steps, initial=self.step, desc="train", unit="it", dynamic_ncols=True)
        t0, stopped, run, out_of_time = time.perf_counter(), False, 0.0, False
        batches = self._batches()
        term = _SigtermFlag()
        try:
            while self.step < end:
                batch = _to_device(next(batches), self.device)
                loss, terms = self.train_step(batch)
                run = loss if self.step == 1 or run == 0.0 else 0.9 * run + 0.1 * loss
                if self.step % cfg.log_every == 0 or self.step == end:
                    self.curves.setdefault("loss", []).append((self.step, loss))
                    for k, v in terms.items():
                        self.curves.setdefault(k, []).append((self.step, v))
                    self._log({"step": self.step, "loss": loss, **terms, "lr": self.scheduler.get_last_lr()[0],
                               "patch": self.patches.patch_size(self.step - 1),
                               "seconds": round(time.perf_counter() - t0, 3)})
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{run:.4g}", lr=f"{self.scheduler.get_last_lr()[0]:.2e}")
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
            if bar is not None:
                bar.close()
        if term.received:
            if self.out_dir is not None and D.is_main():
                self.save(self.out_dir / "last.pt")
            term.pass_on()
        validated = self.curves.get(f"val/{self.monitor}", [])
        if (cfg.val_every and self.step == cfg.steps and not stopped
                and (not validated or validated[-1][0] != self.step)):
            self._validate()  # the end of the schedule is always scored, so best.pt exists after any full run
        if self.out_dir is not None and D.is_main():
            self.save(self.out_dir / "last.pt")
            if any(len(v) for v in self.curves.values()):
                plot_curves(self.curves, self.out_dir / "loss_curve.png")
        return TrainResult(self.step, stopped, self.best, dict(self.curves), time.perf_counter() - t0, out_of_time)

    def __repr__(self) -> str:
        return f"Trainer(step={self.step}/{self.config.steps}, world={self.world}, device={self.device}, patches={self.patches})"



class _SigtermFlag:
    """Turns SIGTERM into a flag the training loop reads between steps (never inside an update).

    Installed only in the main thread (Python's rule for signal handlers); elsewhere it is inert.
    Under DDP any rank's flag stops every rank at the same step."""

    def __init__(self) -> None:
        self.received = False
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._on_signal)

    def _on_signal(self, signum, frame) -> None:
        self.received = True

    def is_set(self, world: int, device: torch.device) -> bool:
        if world > 1:
            flag = torch.tensor([int(self.received)], device=device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            self.received = bool(flag.item())
        return self.received

    def restore(self) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    def pass_on(self) -> None:
        """After the save: re-deliver SIGTERM to the handler that was there before (default: exit)."""
        if self._previous is not None:
            signal.raise_signal(signal.SIGTERM)
