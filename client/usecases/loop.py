"""Use cases of the UGA loop on stored slides: predict, rank, correct.

``pathloop predict`` and ``pathloop rank`` (and the site API's jobs of the same names): every
fold over a slide's tissue into prediction and uncertainty rasters; patches ranked by
uncertainty (or at random) into the worklist; a corrected mask saved as a new version of the
patch's correction. Training on the corrections is :mod:`~pathloop.client.usecases.models`'.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

from pathloop.client.errors import ConflictError, InputError
from pathloop.client.inference import SlidePrediction, predict_slide
from pathloop.client.ranking import (
    PatchSpec,
    RandomForegroundStrategy,
    RankingStrategy,
    SiteRanking,
    SiteSlide,
    SlideRanking,
    UncertaintyStrategy,
    rank_site,
    rank_slide,
)
from pathloop.client.settings import SiteSettings
from pathloop.client.store import (
    CorrectionRecord,
    ModelVersionRecord,
    PatchBox,
    SlideRecord,
    Store,
)
from pathloop.client.tiling import compute_tissue_mask
from pathloop.client.usecases.slides import open_stored_slide

if TYPE_CHECKING:
    from pathloop.client.segmentation import Ensemble

logger = logging.getLogger(__name__)

CORRECTION_RASTER = "correction"
STRATEGIES: dict[str, Callable[[], RankingStrategy]] = {
    "uga": UncertaintyStrategy, "random": RandomForegroundStrategy}


def predict_stored_slide(settings: SiteSettings, store: Store, slide: SlideRecord,
                         ensemble: Ensemble, version: ModelVersionRecord, *,
                         progress: Callable[[int, int], None] | None = None
                         ) -> SlidePrediction:
    """Every fold's softmax over the slide's tissue → prediction and uncertainty rasters."""
    with open_stored_slide(settings, slide) as opened:
        tissue = compute_tissue_mask(opened, mpp=settings.tiling.thumbnail_mpp)
        return predict_slide(opened, tissue, ensemble, store.rasters, slide.id,
                             model_version_id=version.id, progress=progress)


def rank_stored_slide(settings: SiteSettings, store: Store, slide: SlideRecord, *,
                      spec: PatchSpec, k: int, strategy: str = "uga", seed: int = 0,
                      progress: Callable[[int, int], None] | None = None) -> SlideRanking:
    """Rank a predicted slide's patches and put the top ``k`` in its worklist.

    Patches already corrected on the slide are not offered again. ``progress`` is called
    with ``(done, total)`` as patches are read and scored, and right before the ranking is
    stored (see :func:`~pathloop.client.ranking.rank_slide`); it may raise to cancel.
    """
    chosen = _strategy(strategy)
    with open_stored_slide(settings, slide) as opened:
        tissue = compute_tissue_mask(opened, mpp=settings.tiling.thumbnail_mpp)
        return rank_slide(store, slide.id, opened, strategy=chosen, k=k, spec=spec,
                          seed=seed, tissue=tissue, exclude=_corrected_boxes(store, [slide]),
                          progress=progress)


def rank_stored_site(settings: SiteSettings, store: Store, slides: Sequence[SlideRecord], *,
                     spec: PatchSpec, k: int, strategy: str = "uga", seed: int = 0
                     ) -> SiteRanking:
    """Rank the patches of a site's predicted slides together; the top ``k`` go to the worklist.

    As the UGA paper ranked per centre: one pool of candidates across the slides, each slide
    opened in turn. Patches already corrected are not offered again.
    """
    chosen = _strategy(strategy)
    exclude = _corrected_boxes(store, slides)

    def opened_slides() -> Iterator[SiteSlide]:
        for record in slides:
            with open_stored_slide(settings, record) as opened:
                tissue = compute_tissue_mask(opened, mpp=settings.tiling.thumbnail_mpp)
                yield SiteSlide(record.id, opened, tissue)

    return rank_site(store, opened_slides(), strategy=chosen, k=k, spec=spec, seed=seed,
                     exclude=exclude)


def _strategy(name: str) -> RankingStrategy:
    if name not in STRATEGIES:
        raise InputError(f"strategy {name!r}: one of {', '.join(STRATEGIES)}")
    return STRATEGIES[name]()


def _corrected_boxes(store: Store, slides: Sequence[SlideRecord]) -> list[PatchBox]:
    ids = {slide.id for slide in slides}
    return [c.patch for c in store.latest_corrections() if c.patch.slide_id in ids]


def patch_mask_shape(store: Store, box: PatchBox) -> tuple[int, int]:
    """``(H, W)`` of a patch's label mask: its box at ``box.mpp`` µm/px."""
    scale = box.mpp / store.get_slide(box.slide_id).mpp_x  # level-0 px per mask px
    return max(1, round(box.height / scale)), max(1, round(box.width / scale))


def save_correction_mask(store: Store, box: PatchBox, mask: NDArray[np.uint8], *,
                         author: str, ranked_patch_id: int | None = None,
                         base_version: int | None = None,
                         details: Mapping[str, Any] | None = None) -> CorrectionRecord:
    """Store a corrected label mask for a patch as a new correction version.

    ``mask`` is ``(H, W)`` uint8 labels covering ``box`` at ``box.mpp`` µm/px; ``details``
    (JSON) are kept in the version's data, e.g. how the mask was made.

    Raises
    ------
    InputError
        The mask's shape or dtype does not fit the patch.
    ConflictError
        ``base_version`` is not the patch's latest version; nothing is stored.
    """
    expected = patch_mask_shape(store, box)
    if mask.dtype != np.uint8 or mask.shape != expected:
        raise InputError(f"correction mask must be uint8 of shape {expected} (the patch at "
                         f"{box.mpp} µm/px), got {mask.dtype} {mask.shape}")
    # A stale save is refused before its raster is written (the save re-checks atomically).
    found = len(store.correction_history(box))
    if (base_version or 0) != found:
        raise ConflictError(f"correction of slide {box.slide_id} patch ({box.x}, {box.y}) is at "
                            f"version {found}, but this save was based on version "
                            f"{base_version or 0}")
    raster = store.rasters.save(mask, box.slide_id, CORRECTION_RASTER, mpp=box.mpp,
                                downsample="mode",
                                attributes={"x": box.x, "y": box.y})
    return store.save_correction(ranked_patch_id if ranked_patch_id is not None else box,
                                 data={"kind": "label-mask", **(details or {})},
                                 author=author, base_version=base_version,
                                 raster_id=raster.id)


def dice(prediction: NDArray[np.integer], truth: NDArray[np.integer], label: int = 1) -> float:
    """Dice of one label between two ``(H, W)`` label maps (1.0 when both are empty)."""
    return pooled_dice([(prediction, truth)], label)


def pooled_dice(pairs: Iterable[tuple[NDArray[np.integer], NDArray[np.integer]]],
                label: int = 1) -> float:
    """Dice of one label over several (prediction, truth) pairs counted together, as if they
    were one image (1.0 when all are empty)."""
    overlap = total = 0
    for prediction, truth in pairs:
        p, t = prediction == label, truth == label
        overlap += int((p & t).sum())
        total += int(p.sum()) + int(t.sum())
    return 1.0 if total == 0 else 2.0 * overlap / total
