"""H&E stain appearance of the simulated sites.

Colours follow the Beer–Lambert law: a pixel holding stain concentrations ``c_H`` and ``c_E``
transmits ``RGB = background * exp(-(c_H * haematoxylin + c_E * eosin))``, where each stain is
an optical-density vector (natural-log units per unit concentration, one value per R, G, B).
A site's lab and scanner shift those vectors, the stain strengths and the colour of the glass:
that is the domain shift federated training has to cope with.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SiteStain:
    """H&E stain appearance of one simulated site.

    Attributes
    ----------
    name : short label of the appearance ("pink", "purple", ...).
    haematoxylin : optical density (R, G, B) of one unit of haematoxylin (nuclei, blue-purple).
    eosin : optical density (R, G, B) of one unit of eosin (cytoplasm and stroma, pink).
    background : RGB (0-255) of bare glass as the site's scanner sees it.
    haematoxylin_strength : factor on every haematoxylin concentration (staining time, batch).
    eosin_strength : factor on every eosin concentration.
    glass_noise : standard deviation, in 8-bit grey levels, of the glass's speckle.
    """

    name: str
    haematoxylin: tuple[float, float, float]
    eosin: tuple[float, float, float]
    background: tuple[int, int, int]
    haematoxylin_strength: float = 1.0
    eosin_strength: float = 1.0
    glass_noise: float = 1.2


SITE_STAINS: tuple[SiteStain, ...] = (
    # A well-balanced, slightly eosin-heavy lab: pink stroma, blue-purple nuclei.
    SiteStain("pink", haematoxylin=(0.65, 0.70, 0.29), eosin=(0.08, 0.95, 0.22),
              background=(242, 240, 243), haematoxylin_strength=0.9, eosin_strength=1.1),
    # Long haematoxylin, blue-shifted eosin on a cool scanner: everything purplish.
    SiteStain("purple", haematoxylin=(0.60, 0.76, 0.22), eosin=(0.30, 0.92, 0.10),
              background=(234, 233, 242), haematoxylin_strength=1.3, eosin_strength=0.95),
    # Faded, old slides on a warm scanner: pale stains, yellowish glass.
    SiteStain("faded", haematoxylin=(0.52, 0.60, 0.42), eosin=(0.05, 0.70, 0.45),
              background=(247, 240, 216), haematoxylin_strength=0.65, eosin_strength=0.6),
    # Over-stained sections on a dim scanner: dark and saturated, greyish glass.
    SiteStain("dark", haematoxylin=(0.70, 0.74, 0.32), eosin=(0.12, 1.05, 0.30),
              background=(226, 224, 228), haematoxylin_strength=1.45, eosin_strength=1.35),
)
"""The simulated sites' stains, one per site, clearly distinct from one another."""

__all__ = ["SITE_STAINS", "SiteStain"]
