"""What a network learns: its labels and its input channels.

One :class:`SegmentationTask` describes each network the project trains through nnU-Net:
the UGA ensemble (RGB → background/nucleus), the AI²Seg instance model (more labels), the
upgrade network (RGB plus a low-quality mask as a fourth input channel) and the bootstrap
network. Nothing in the adapter hard-codes any of them.

Normalisation
-------------
nnU-Net picks a channel's normalisation from its name in ``dataset.json``
(``nnunetv2.preprocessing.normalization.map_channel_name_to_normalization``): the names
``"R"``, ``"G"``, ``"B"`` are not keywords, so RGB channels get ``ZScoreNormalization`` —
each channel of each image minus its own mean, divided by its own standard deviation
(``max(std, 1e-8)``), as the pathology nnU-Net setups do. That makes the network blind to a
site's overall brightness and per-channel stain intensity, which is what a federated
ensemble across stain shifts wants. Extra channels default to no normalisation (a mask
channel keeps its 0/1 values); the keywords nnU-Net understands are listed in
:data:`NORMALIZATIONS`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from pathloop.client.segmentation.errors import DatasetError

#: Our normalisation names → (nnU-Net channel-name keyword or None, nnU-Net scheme class name).
#: ``None`` means "not a keyword": the channel keeps its own name and nnU-Net z-scores it.
NORMALIZATIONS: Mapping[str, tuple[str | None, str]] = MappingProxyType({
    "zscore": (None, "ZScoreNormalization"),
    "none": ("noNorm", "NoNormalization"),
    "rescale_to_0_1": ("rescale_to_0_1", "RescaleTo01Normalization"),
    "rgb_to_0_1": ("rgb_to_0_1", "RGBTo01Normalization"),
})

_KEYWORDS = {"ct", "nonorm", "zscore", "rescale_to_0_1", "rgb_to_0_1"}
_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")
RGB_NAMES = ("R", "G", "B")


@dataclass(frozen=True)
class Channel:
    """One input channel of a network.

    Attributes
    ----------
    name:
        What the channel holds (``"R"``, ``"lowquality_mask"``); recorded in the model card.
    normalization:
        A key of :data:`NORMALIZATIONS`.
    """

    name: str
    normalization: str = "none"

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise DatasetError(f"channel name {self.name!r}: letters, digits, '_' or '-' only")
        if self.normalization not in NORMALIZATIONS:
            known = ", ".join(NORMALIZATIONS)
            raise DatasetError(
                f"channel {self.name!r}: unknown normalization {self.normalization!r} ({known})"
            )
        if self.normalization == "zscore" and self.name.casefold() in _KEYWORDS:
            raise DatasetError(
                f"channel name {self.name!r} is an nnU-Net normalisation keyword; rename it"
            )

    @property
    def nnunet_name(self) -> str:
        """The name written to ``dataset.json``; it selects nnU-Net's normalisation."""
        keyword, _ = NORMALIZATIONS[self.normalization]
        return keyword if keyword is not None else self.name

    @property
    def nnunet_scheme(self) -> str:
        """nnU-Net's normalisation class name for this channel (as in the plans)."""
        return NORMALIZATIONS[self.normalization][1]


@dataclass(frozen=True)
class SegmentationTask:
    """A network's labels and input channels.

    Attributes
    ----------
    name:
        Short name (letters, digits, ``_-``); becomes part of nnU-Net's dataset name.
    labels:
        Label name → value in the masks; values must be ``0 .. C-1`` with ``0`` the
        background (nnU-Net's rule). Example: ``{"background": 0, "nucleus": 1}``.
    extra_channels:
        Input channels after R, G, B (e.g. ``Channel("lowquality_mask")`` for the upgrade
        network). With extra channels every channel is written as its own grey PNG.
    rgb_normalization:
        ``"zscore"`` (default, per image and channel) or ``"rgb_to_0_1"`` (divide by 255).
    """

    name: str
    labels: Mapping[str, int]
    extra_channels: tuple[Channel, ...] = ()
    rgb_normalization: str = "zscore"
    _label_names: tuple[str, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise DatasetError(f"task name {self.name!r}: letters, digits, '_' or '-' only")
        labels = {str(k): int(v) for k, v in self.labels.items()}
        if sorted(labels.values()) != list(range(len(labels))) or len(labels) < 2:
            raise DatasetError(
                f"task {self.name!r}: label values must be 0..C-1 with C >= 2, got {labels}"
            )
        if self.rgb_normalization not in ("zscore", "rgb_to_0_1"):
            raise DatasetError(
                f"task {self.name!r}: rgb_normalization must be 'zscore' or 'rgb_to_0_1'"
            )
        names = [c.name for c in self.channels]
        if len(set(names)) != len(names):
            raise DatasetError(f"task {self.name!r}: duplicate channel names {names}")
        object.__setattr__(self, "labels", MappingProxyType(labels))
        by_value = sorted(labels, key=labels.__getitem__)
        object.__setattr__(self, "_label_names", tuple(by_value))

    @property
    def label_names(self) -> tuple[str, ...]:
        """Label names ordered by value: ``label_names[v]`` is the name of value ``v``."""
        return self._label_names

    @property
    def n_classes(self) -> int:
        """Number of classes C (background included)."""
        return len(self._label_names)

    @property
    def channels(self) -> tuple[Channel, ...]:
        """All input channels in order: R, G, B, then the extra channels."""
        rgb = tuple(Channel(n, self.rgb_normalization) for n in RGB_NAMES)
        return rgb + tuple(self.extra_channels)

    @property
    def separate_channel_files(self) -> bool:
        """Whether each channel is its own file (``_0000`` … ``_000N``) or one RGB PNG."""
        return bool(self.extra_channels)

    def nnunet_channel_names(self) -> dict[str, str]:
        """``dataset.json``'s ``channel_names``: index (as str) → nnU-Net channel name."""
        return {str(i): c.nnunet_name for i, c in enumerate(self.channels)}

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready description (inverse of :meth:`from_json`)."""
        return {
            "name": self.name,
            "labels": dict(self.labels),
            "rgb_normalization": self.rgb_normalization,
            "extra_channels": [
                {"name": c.name, "normalization": c.normalization} for c in self.extra_channels
            ],
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> SegmentationTask:
        """Rebuild a task from :meth:`to_json`'s output."""
        try:
            return cls(
                name=str(data["name"]),
                labels={str(k): int(v) for k, v in data["labels"].items()},
                extra_channels=tuple(
                    Channel(str(c["name"]), str(c["normalization"]))
                    for c in data.get("extra_channels", ())
                ),
                rgb_normalization=str(data.get("rgb_normalization", "zscore")),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as error:
            raise DatasetError(f"malformed task description: {error!r}") from error


__all__ = ["NORMALIZATIONS", "RGB_NAMES", "Channel", "SegmentationTask"]
