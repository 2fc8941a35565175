"""Torch devices named by the caller, checked against this machine, and the precision the
fold networks predict in there."""

from __future__ import annotations

from typing import get_args

import torch

from pathloop.client.errors import ConfigError
from pathloop.client.settings import Precision


def torch_device(name: str) -> torch.device:
    """The torch device called ``name`` (``"cpu"``, ``"cuda"``, ``"cuda:1"``, ``"mps"``).

    Raises
    ------
    ConfigError
        The name is not a device, or the device is not available here.
    """
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as error:
        raise ConfigError(f"unknown torch device {name!r} ({error})") from None
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {name!r}: no CUDA GPU on this machine")
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r}: MPS is not available on this machine")
    return device


PRECISIONS: tuple[str, ...] = get_args(Precision)


def native_bfloat16() -> bool:
    """Whether this CPU computes bfloat16 in hardware (AVX512-BF16 or AMX tiles)."""
    return bool(torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported())


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """The autocast dtype for ``precision`` (see :data:`~pathloop.client.settings.Precision`)
    on ``device``; ``None`` for plain float32.

    Raises
    ------
    ConfigError
        ``precision`` is not one of :data:`PRECISIONS`.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; use one of "
                          f"{', '.join(PRECISIONS)}")
    if precision == "bfloat16" or (precision == "auto" and device.type == "cpu"
                                   and native_bfloat16()):
        return torch.bfloat16
    return None


__all__ = ["PRECISIONS", "autocast_dtype", "native_bfloat16", "torch_device"]
