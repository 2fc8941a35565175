"""Per-pixel uncertainty of a fold ensemble (numpy only): UGA, predictive entropy, MI.

See :mod:`pathloop.client.uncertainty.measures` for the formulas, shapes and bounds.
"""

from pathloop.client.uncertainty.measures import (
    EPS,
    FloatMap,
    UncertaintyMaps,
    fold_mean,
    mutual_information,
    predictive_entropy,
    uga_uncertainty,
    uncertainty_maps,
)

__all__ = [
    "EPS",
    "FloatMap",
    "UncertaintyMaps",
    "fold_mean",
    "mutual_information",
    "predictive_entropy",
    "uga_uncertainty",
    "uncertainty_maps",
]
