"""Synthetic sample slides: H&E-like pyramidal TIFFs with ground truth, one stain and one
tissue morphology per site.

The demo never depends on real data: it makes its own slides with :func:`make_sample_sites`.
The benchmarks write large slides with :func:`write_synthetic_slide`, which streams tile by
tile in bounded memory. See :mod:`pathloop.client.sample.synthetic` for the file layout.
"""

from pathloop.client.sample.morphology import SITE_MORPHOLOGIES, SiteMorphology
from pathloop.client.sample.stains import SITE_STAINS, SiteStain
from pathloop.client.sample.synthetic import (
    SyntheticSlide,
    make_sample_sites,
    read_mask_region,
    write_synthetic_slide,
)

__all__ = [
    "SITE_MORPHOLOGIES",
    "SITE_STAINS",
    "SiteMorphology",
    "SiteStain",
    "SyntheticSlide",
    "make_sample_sites",
    "read_mask_region",
    "write_synthetic_slide",
]
