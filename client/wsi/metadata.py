"""What a slide says about itself: size, pyramid, resolution, vendor."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from pathloop.client.errors import MissingResolutionError

MppSource = Literal["slide", "user"]


@dataclass(frozen=True)
class SlideMetadata:
    """Metadata of an opened slide.

    Attributes
    ----------
    path:
        The slide file.
    backend:
        ``"openslide"`` or ``"tiffslide"`` (or ``"memory"`` for the in-memory fake).
    vendor:
        Format as the backend names it (``"aperio"``, ``"dicom"``, ``"generic-tiff"``, …).
    level_dimensions:
        ``(width, height)`` in pixels of every pyramid level, level 0 first.
    level_downsamples:
        Downsample of every level relative to level 0.
    mpp_x, mpp_y:
        Level-0 resolution in µm/px, or ``None`` when neither the slide nor the user gave one.
    mpp_source:
        ``"slide"`` when read from the file, ``"user"`` when given by the user.
    objective_power:
        Scanner objective magnification, when recorded.
    associated_images:
        Names of the label, macro, thumbnail … images stored beside the pyramid.
    properties:
        Every raw property the backend reported.
    """

    path: Path
    backend: str
    vendor: str | None
    level_dimensions: tuple[tuple[int, int], ...]
    level_downsamples: tuple[float, ...]
    mpp_x: float | None
    mpp_y: float | None
    mpp_source: MppSource | None
    objective_power: float | None
    associated_images: tuple[str, ...] = ()
    properties: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def width(self) -> int:
        """Level-0 width in pixels."""
        return self.level_dimensions[0][0]

    @property
    def height(self) -> int:
        """Level-0 height in pixels."""
        return self.level_dimensions[0][1]

    @property
    def level_count(self) -> int:
        """Number of pyramid levels."""
        return len(self.level_dimensions)

    @property
    def mpp(self) -> float:
        """Level-0 resolution in µm/px (mean of x and y).

        Raises
        ------
        MissingResolutionError
            When the slide records none and the user gave none.
        """
        if self.mpp_x is None or self.mpp_y is None:
            raise MissingResolutionError(
                self.path,
                "the slide records no resolution (µm/px); give one with --mpp",
            )
        return (self.mpp_x + self.mpp_y) / 2

    def summary(self) -> dict[str, object]:
        """A JSON-ready digest for records and displays (no raw properties)."""
        return {
            "backend": self.backend,
            "vendor": self.vendor,
            "width": self.width,
            "height": self.height,
            "level_count": self.level_count,
            "level_dimensions": [list(d) for d in self.level_dimensions],
            "level_downsamples": list(self.level_downsamples),
            "mpp_x": self.mpp_x,
            "mpp_y": self.mpp_y,
            "mpp_source": self.mpp_source,
            "objective_power": self.objective_power,
            "associated_images": list(self.associated_images),
        }
