"""Torch devices named by the caller, checked against this machine."""

from __future__ import annotations

import torch

from pathloop.client.errors import ConfigError


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


__all__ = ["torch_device"]
