"""A hue rotation for nnU-Net's augmentation pipeline (batchgeneratorsv2).

nnU-Net's default augmentation has mirroring, rotation, scaling, brightness, contrast,
gamma, blur and noise, each per channel, but nothing that turns one stain colour into
another. :class:`HueRotationTransform` rotates the colour of the R, G, B channels around
the grey axis (a hue shift in HSV terms), which mimics stain variation between sites.

The patches it sees are already z-scored per channel by nnU-Net's preprocessing, so the
rotation acts on standardised channels and each channel's mean and spread are restored
afterwards. That equals a hue rotation of the original RGB tile when its three channels
have the same spread, and approximates it otherwise (H&E tiles are close).
"""

from __future__ import annotations

import math
from typing import Any

import torch
from batchgeneratorsv2.transforms.base.basic_transform import ImageOnlyTransform


def hue_rotation_matrix(turns: float) -> torch.Tensor:
    """The ``(3, 3)`` float32 matrix rotating RGB vectors by ``turns`` × 360° around grey.

    Rodrigues' formula around the unit axis ``(1, 1, 1) / √3``; grey stays grey.
    """
    angle = 2.0 * math.pi * turns
    cos, sin = math.cos(angle), math.sin(angle)
    k = 1.0 / math.sqrt(3.0)
    cross = torch.tensor([[0.0, -k, k], [k, 0.0, -k], [-k, k, 0.0]])
    outer = torch.full((3, 3), k * k)
    return (cos * torch.eye(3) + sin * cross + (1.0 - cos) * outer).to(torch.float32)


class HueRotationTransform(ImageOnlyTransform):
    """Rotate the hue of channels 0..2 by a random angle, keeping each channel's moments.

    Parameters
    ----------
    max_shift:
        Largest rotation as a fraction of the colour circle (0.05 = ±18°); the angle is
        uniform in ``[-max_shift, max_shift]``.
    """

    def __init__(self, max_shift: float) -> None:
        super().__init__()
        self.max_shift = float(max_shift)

    def get_parameters(self, **data_dict: Any) -> dict[str, Any]:
        """Draw the rotation for one sample."""
        turns = (2.0 * torch.rand(1).item() - 1.0) * self.max_shift
        return {"matrix": hue_rotation_matrix(turns)}

    def _apply_to_image(self, img: torch.Tensor, **params: Any) -> torch.Tensor:
        """``img``: ``(C, H, W)`` float tensor with R, G, B in channels 0..2."""
        if img.shape[0] < 3:
            return img
        rgb = img[:3].reshape(3, -1)
        mean = rgb.mean(dim=1, keepdim=True)
        std = rgb.std(dim=1, unbiased=False, keepdim=True)
        rotated = params["matrix"].to(rgb.dtype) @ rgb
        new_mean = rotated.mean(dim=1, keepdim=True)
        new_std = rotated.std(dim=1, unbiased=False, keepdim=True).clamp_min(1e-8)
        restored = (rotated - new_mean) / new_std * std + mean
        img[:3] = restored.reshape(img[:3].shape)
        return img


__all__ = ["HueRotationTransform", "hue_rotation_matrix"]
