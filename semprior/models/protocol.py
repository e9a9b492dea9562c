"""The protocol every semprior enhancer follows, and the helpers that implement it.

An *enhancer* is an ``nn.Module`` with

- ``forward(low) -> image``: ``(B, 3, H, W)`` in ``[0, 1]`` to ``(B, 3, H, W)`` at **any** size
  (the model pads to its `required_multiple` and crops back itself);
- ``required_multiple``: the padding multiple (``1`` when it needs none; tiling reads it);
- ``config``: a frozen dataclass with ``preset(name, **overrides)``, ``from_dict`` and
  ``to_dict`` in one vocabulary (``width`` / ``depth`` / ``heads`` / ``blocks``; official names
  only at the state-dict boundary);
- a training objective ``loss(low, high) -> (total, {term: value})``, called by the training loss
  function its registry entry names (`semprior.models.registry.ModelEntry.training_loss`);
- frozen parts (semantic priors, text losses) kept **out** of ``state_dict``; the checkpoint
  records the prior by name (`semprior.models.io`).

`is_enhancer` checks the structural part; ``tests/models/test_conformance.py`` checks the
behaviour of every registered model.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol, TypeVar, runtime_checkable

from torch import Tensor, nn

from semprior._config import from_dict

__all__ = ["Enhancer", "call_method", "config_from_dict", "is_enhancer", "unwrap"]

T = TypeVar("T")


@runtime_checkable
class Enhancer(Protocol):
    """Structural type of a semprior enhancer (see the module docstring)."""

    config: Any
    required_multiple: int

    def __call__(self, low: Tensor) -> Tensor: ...

    def state_dict(self, *args: Any, **kwargs: Any) -> dict[str, Any]: ...


def is_enhancer(model: object) -> bool:
    """``True`` when ``model`` has a dataclass ``config`` with ``to_dict`` and an int ``required_multiple``.

    Examples:
        >>> from semprior.models.retinexformer import Retinexformer, RetinexformerConfig
        >>> is_enhancer(Retinexformer(RetinexformerConfig(width=4, blocks=(1, 1, 1))))
        True
    """
    cfg = getattr(model, "config", None)
    rm = getattr(model, "required_multiple", None)
    return (
        isinstance(model, Enhancer)
        and dataclasses.is_dataclass(cfg)
        and callable(getattr(cfg, "to_dict", None))
        and isinstance(rm, int)
        and rm >= 1
    )


def config_from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build config dataclass ``cls`` from a mapping, strictly (the one ``from_dict`` of the project).

    Unknown keys are an error naming the valid ones; lists become tuples; nested dataclass fields
    accept mappings. Delegates to [`semprior._config.from_dict`][semprior._config.from_dict] (a low-layer module).
    """
    return from_dict(cls, data, where or cls.__name__)


def unwrap(model: nn.Module) -> nn.Module:
    """The inner module of a ``DistributedDataParallel`` / ``DataParallel`` wrapper (or the model itself).

    A model's training loss calls the wrapper (so DDP synchronises gradients) and reads the
    model's own attributes through ``unwrap(model)``.
    """
    return model.module if isinstance(model, (nn.parallel.DistributedDataParallel, nn.DataParallel)) else model


def call_method(model: nn.Module, method: str, *args: Any) -> Any:
    """``unwrap(model).<method>(*args)`` run through the wrapper's ``forward`` when ``model`` is wrapped.

    DistributedDataParallel synchronises gradients only for what runs inside its ``forward``; a
    training objective that is not ``forward`` (CUGD's ``loss``) is called this way.
    """
    inner = unwrap(model)
    if inner is model:
        return getattr(model, method)(*args)
    inner.forward = getattr(inner, method)  # an instance attribute: the wrapper's forward calls it
    try:
        return model(*args)
    finally:
        del inner.forward
