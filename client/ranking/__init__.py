"""Patch scoring and ranking strategies for the pathologist's worklist (numpy + records).

Patches (default: 1024 px at 1 µm/px) on tissue and not mostly black or white are scored by
the sum and mean of a per-pixel uncertainty raster; a :class:`RankingStrategy` picks the top
``k`` per slide (:func:`rank_slide`) or per site (:func:`rank_site`), stored as worklist
entries with the model version that made the raster.
"""

from pathloop.client.ranking.patches import (
    ForegroundPatch,
    PatchCandidate,
    PatchCounts,
    PatchSpec,
    foreground_patches,
)
from pathloop.client.ranking.ranker import (
    ScoredSlide,
    SiteRanking,
    SiteSlide,
    SlideRanking,
    drop_corrected,
    rank_site,
    rank_slide,
    score_slide,
)
from pathloop.client.ranking.scoring import Raster2D, score_boxes
from pathloop.client.ranking.strategies import (
    RandomForegroundStrategy,
    RankingStrategy,
    UncertaintyStrategy,
)

__all__ = [
    "ForegroundPatch",
    "PatchCandidate",
    "PatchCounts",
    "PatchSpec",
    "RandomForegroundStrategy",
    "RankingStrategy",
    "Raster2D",
    "ScoredSlide",
    "SiteRanking",
    "SiteSlide",
    "SlideRanking",
    "UncertaintyStrategy",
    "drop_corrected",
    "foreground_patches",
    "rank_site",
    "rank_slide",
    "score_boxes",
    "score_slide",
]
