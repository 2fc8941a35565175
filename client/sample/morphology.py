"""Tissue morphology of the simulated sites: how tumour and normal tissue look under the stain.

Stain and scanner change colours, which the networks' per-slide normalisation largely
removes; morphology is what a model trained at one site has to learn anew at another. A
site's cases differ in how densely nuclei pack (the chance that a cell of the nucleus grid
holds one), how large tumour nuclei are, and how much the tumour's own cytoplasm takes up
haematoxylin. The demo's sites are chosen so that a model trained at the first is clearly
worse at the others: at the second, tumour grows in sparse cords of small nuclei
(lobular-like) that resemble normal tissue; at the third, normal stroma is crowded with
lymphocytes (inflamed) that resemble tumour. Tumour cytoplasm takes up some haematoxylin at
every site, so one model can learn all three: with lobular tumour barely tinted, what the
inflamed site teaches (crowded, untinted nuclei are not tumour) and what the lobular site
teaches (sparse small nuclei are tumour) cancelled in the federated average (docs/demo.md).
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SiteMorphology:
    """How the tissue of one simulated site's cases looks.

    Attributes
    ----------
    name : short label ("solid", "lobular", ...).
    normal_presence : chance that a cell of normal tissue holds a nucleus.
    tumour_presence : chance that a cell of tumour holds a nucleus.
    tumour_nucleus_scale : factor on the size of tumour nuclei.
    tumour_tint : haematoxylin taken up by tumour cytoplasm (unitless concentration).
    """

    name: str = "solid"
    normal_presence: float = 0.3
    tumour_presence: float = 0.85
    tumour_nucleus_scale: float = 1.0
    tumour_tint: float = 0.22

    def __post_init__(self) -> None:
        for key in ("normal_presence", "tumour_presence"):
            if not 0.0 <= getattr(self, key) <= 1.0:
                raise ValueError(f"morphology {self.name!r}: {key} must lie in [0, 1]")
        if not 0.3 <= self.tumour_nucleus_scale <= 2.0:
            raise ValueError(f"morphology {self.name!r}: tumour_nucleus_scale must lie in "
                             "[0.3, 2]")
        if not 0.0 <= self.tumour_tint <= 1.0:
            raise ValueError(f"morphology {self.name!r}: tumour_tint must lie in [0, 1]")


SITE_MORPHOLOGIES: tuple[SiteMorphology, ...] = (
    # Solid sheets of large, crowded, dark tumour nuclei in sparse stroma.
    SiteMorphology("solid"),
    # Lobular-like: tumour in sparse cords of small nuclei, some tint: close to normal.
    SiteMorphology("lobular", tumour_presence=0.5, tumour_nucleus_scale=0.8, tumour_tint=0.12),
    # Inflamed: normal stroma crowded with lymphocytes, tumour as at the first site.
    SiteMorphology("inflamed", normal_presence=0.85),
    # Mixed: moderately dense tumour, moderately inflamed stroma.
    SiteMorphology("mixed", normal_presence=0.5, tumour_presence=0.7,
                   tumour_nucleus_scale=0.85, tumour_tint=0.12),
)
"""The simulated sites' morphologies, one per site (site ``i`` gets entry ``i``)."""

__all__ = ["SITE_MORPHOLOGIES", "SiteMorphology"]
