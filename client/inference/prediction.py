"""Slide-level ensemble inference by Gaussian-weighted sliding windows, written into zarr.

:func:`predict_slide` predicts a slide as nnU-Net predicts an image: windows of the fold
networks' training patch on a lattice half a patch apart, each fold's logits weighted by a
Gaussian and averaged where windows overlap, then each fold's softmax. Unlike nnU-Net it
keeps the folds apart (their disagreement is the uncertainty), works stripe by stripe and
band by band so memory stays flat in the slide's size (see
:mod:`pathloop.client.inference.layout` and :mod:`~pathloop.client.inference.blending`), and
predicts only windows that hold tissue. Because windows sit on a lattice fixed to the slide
and every window is normalised with the same slide statistics, the maps do not depend on how
the work is cut: no tile seams, and ranking by uncertainty does not rank by tile position.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray

from pathloop.client.inference.blending import BandAccumulator
from pathloop.client.inference.layout import InferenceLayout, Region, TissueLookup
from pathloop.client.inference.statistics import tissue_statistics
from pathloop.client.inference.stitching import MapKind, MapStitcher
from pathloop.client.inference.windows import SIGMA_SCALE, gaussian_importance
from pathloop.client.segmentation.protocol import FoldPredictor
from pathloop.client.store import RasterRecord, RasterStore
from pathloop.client.tiling import TissueMask
from pathloop.client.uncertainty import EPS, uncertainty_maps
from pathloop.client.wsi import Slide

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called with ``(windows done, windows in all)`` after every batch."""

Normalization = Literal["slide", "window"]

DEFAULT_STEP = 0.5
"""Window step as a fraction of the patch (nnU-Net's ``tile_step_size``)."""
PIXELS_PER_BATCH = 256 * 512
"""Window pixels per call of the predictor when no batch size is given (8 windows of 128²:
the tiny network's fastest pass on a 2-core CPU, see ``segmentation.ensemble``)."""


@dataclass(frozen=True)
class SlidePrediction:
    """What predicting one slide wrote.

    Attributes
    ----------
    rasters:
        The committed rasters by kind (a :class:`MapKind`, equal to the kind strings
        ``"prediction"``, ``"probability"``, ``"uncertainty"``, ``"entropy"``,
        ``"mutual-information"``), each ``(H, W)`` at ``mpp``.
    mpp:
        Resolution of the rasters in µm/px (the model's).
    shape:
        ``(H, W)`` of the rasters: the slide's size at ``mpp``.
    n_windows:
        Window predictions made (each by every fold; windows on two stripes count twice).
    seconds:
        Wall time.
    """

    rasters: Mapping[MapKind, RasterRecord]
    mpp: float
    shape: tuple[int, int]
    n_windows: int
    seconds: float

    @property
    def prediction(self) -> RasterRecord:
        """The uint8 argmax raster."""
        return self.rasters[MapKind.PREDICTION]

    @property
    def uncertainty(self) -> RasterRecord:
        """The float16 UGA uncertainty raster."""
        return self.rasters[MapKind.UNCERTAINTY]


@dataclass(frozen=True)
class _Stripe:
    """One stripe's columns, the lattice columns that meet it and which windows hold tissue."""

    x0: int
    x1: int
    cols: NDArray[np.int64]
    on_tissue: NDArray[np.bool_]  # (window rows, window cols)


def predict_slide(
    slide: Slide,
    tissue: TissueMask,
    predictor: FoldPredictor,
    rasters: RasterStore,
    slide_id: int,
    *,
    model_version_id: int | None = None,
    step: float = DEFAULT_STEP,
    batch_size: int | None = None,
    mask_background: bool = True,
    normalization: Normalization = "slide",
    workers: int = 0,
    stripe: int | None = None,
    phase: int = 0,
    progress: Progress | None = None,
) -> SlidePrediction:
    """Predict a slide with every fold and store the prediction and uncertainty rasters.

    Parameters
    ----------
    slide:
        The open slide (level-0 resolution known).
    tissue:
        The slide's tissue mask; only windows holding some of it are predicted.
    predictor:
        The fold ensemble; windows of ``predictor.patch_size`` are read at
        ``predictor.mpp`` µm/px.
    rasters:
        Where the rasters go (``store.rasters``).
    slide_id:
        The slide's record id.
    model_version_id:
        The model version recorded on every raster.
    step:
        Distance between window origins as a fraction of the patch (0.5: every pixel is
        seen by about four windows, nnU-Net's default; 1: no overlap, visible seams).
    batch_size:
        Windows per call of ``predictor.predict_logits``; default: about 512² pixels.
    mask_background:
        Set pixels off the tissue mask to background with no uncertainty (otherwise the
        model's output is kept on glass that windows covered).
    normalization:
        ``"slide"``: windows of z-scoring networks are normalised with the slide's tissue
        statistics (:mod:`~pathloop.client.inference.statistics`); ``"window"``: each window
        on its own. Networks that divide by 255 are unaffected.
    workers:
        Threads reading the next row of windows while the current one is predicted; 0
        (default) reads in the calling thread. The forward passes already keep every core
        busy (torch runs a thread per core), so on this 2-core class of machine a reading
        thread only competes with them (the tiny model's slide inference measured 10–20 %
        slower with 1); 1 pays off where reads wait on slow storage and cores are spare.
    stripe, phase:
        Width of the stripes and offset of the stripe and band boundaries: the order of
        work, never the result (tests shift them to prove it).
    progress:
        Called with ``(windows done, windows in all)`` after every batch, and once more
        right before the rasters are committed; it may raise to stop (a cancelled job),
        and nothing is recorded then.

    Returns
    -------
    SlidePrediction
        The committed raster records, all ``(H, W)`` at ``predictor.mpp`` with pyramids.

    Raises
    ------
    MissingResolutionError
        The slide has no µm/px.
    RegionError
        Impossible window geometry, or a tissue mask of another slide.
    ValueError
        Bad arguments, or the predictor returned another shape than ``(K, B, C, h, w)``.
    """
    started = time.perf_counter()
    n_classes = int(predictor.n_classes)
    if not 2 <= n_classes <= 256:
        raise ValueError(f"the predictor must have 2 to 256 classes, got {n_classes}")
    if normalization not in ("slide", "window"):
        raise ValueError(f"normalization must be 'slide' or 'window', got {normalization!r}")
    layout = InferenceLayout.for_slide(slide, mpp=predictor.mpp,
                                       patch=tuple(predictor.patch_size),  # type: ignore[arg-type]
                                       step=step, stripe=stripe, phase=phase)
    layout.check_tissue(tissue)
    per_batch = batch_size or max(1, PIXELS_PER_BATCH // (layout.patch[0] * layout.patch[1]))
    if per_batch < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    lookup = TissueLookup(tissue, layout.mpp)
    stripes = _plan(layout, lookup)
    total = sum(int(s.on_tissue.sum()) for s in stripes)
    stats = tissue_statistics(slide, layout, lookup) \
        if normalization == "slide" and total else None
    attributes: dict[str, Any] = {
        "n_folds": int(predictor.n_folds), "n_classes": n_classes,
        "patch": list(layout.patch), "step": list(layout.step), "blending": "gaussian",
        "sigma_scale": SIGMA_SCALE, "normalization": normalization, "eps": EPS,
        "mask_background": mask_background, "tissue_mpp": tissue.mpp,
    }
    logger.info("predicting %d windows of %s px at %.3g µm/px (%d folds, %d stripes)", total,
                layout.patch, layout.mpp, predictor.n_folds, len(stripes))
    counter = _Counter(total, progress)
    weights = gaussian_importance(layout.patch)
    with MapStitcher(rasters, slide_id, layout, model_version_id=model_version_id,
                     attributes=attributes) as stitcher:
        for part in stripes:
            if part.on_tissue.any():
                _predict_stripe(slide, tissue, predictor, layout, part, weights, stats,
                                stitcher, per_batch, workers, mask_background, counter)
        counter.add(0)  # the last moment a stop leaves nothing recorded
    return SlidePrediction(stitcher.records, layout.mpp, layout.shape, total,
                           time.perf_counter() - started)


class _Counter:
    def __init__(self, total: int, progress: Progress | None) -> None:
        self.done, self.total, self._progress = 0, total, progress

    def add(self, n: int) -> None:
        self.done += n
        if self._progress is not None:
            self._progress(self.done, self.total)


def _plan(layout: InferenceLayout, lookup: TissueLookup) -> list[_Stripe]:
    rows = layout.window_rows()
    out = []
    for x0, x1 in layout.stripes():
        cols = layout.window_cols(x0, x1)
        out.append(_Stripe(x0, x1, cols, layout.on_tissue(lookup, rows, cols)))
    return out


def _predict_stripe(slide: Slide, tissue: TissueMask, predictor: FoldPredictor,
                    layout: InferenceLayout, part: _Stripe, weights: NDArray[np.float32],
                    stats: NDArray[np.float64] | None, stitcher: MapStitcher, per_batch: int,
                    workers: int, mask_background: bool, counter: _Counter) -> None:
    """Predict one stripe's tissue windows in lattice order, writing each band once finished."""
    _patch_rows, patch_cols = layout.patch
    left = int(part.cols[0])
    accumulator = BandAccumulator(
        int(predictor.n_folds), int(predictor.n_classes), top=layout.first_band(),
        left=left, width=int(part.cols[-1]) + patch_cols - left, band=layout.band,
        weights=weights)

    def finish_band() -> None:
        top = accumulator.top
        probabilities, covered = accumulator.pop_band(part.x0, part.x1)
        lo, hi = max(0, top), min(layout.raster_height, top + layout.band)
        if hi <= lo or not covered.any():
            return
        region = Region(lo, part.x0, hi - lo, part.x1 - part.x0)
        keep = covered[lo - top:hi - top]
        if mask_background:
            keep = keep & layout.tissue_window(tissue, region)
        maps = uncertainty_maps(np.ascontiguousarray(probabilities[:, :, lo - top:hi - top]))
        stitcher.write(region, maps, keep)

    def predict(batch: list[tuple[int, int, NDArray[np.uint8]]]) -> None:
        # Windows come in lattice order, so once one lies below the current band no window
        # still to come can reach that band's rows.
        images = np.stack([pixels for _, _, pixels in batch])
        logits = predictor.predict_logits(images, stats=stats)
        _check_output(logits, predictor, images.shape)
        for index, (y, x, _) in enumerate(batch):
            while y >= accumulator.top + layout.band:
                finish_band()
            accumulator.add(y, x, logits[:, index])
        counter.add(len(batch))

    # Batches run across lattice rows: a stripe's row often holds fewer windows than a batch,
    # and small batches waste the forward pass.
    pending: list[tuple[int, int, NDArray[np.uint8]]] = []
    for y, cols, windows in _read_rows(slide, layout, part, workers):
        pending += [(y, int(x), window) for x, window in zip(cols.tolist(), windows, strict=True)]
        while len(pending) >= per_batch:
            predict(pending[:per_batch])
            del pending[:per_batch]
    if pending:
        predict(pending)
    while accumulator.top < layout.raster_height:
        finish_band()


def _check_output(logits: NDArray[Any], predictor: FoldPredictor,
                  images: tuple[int, ...]) -> None:
    batch, height, width = images[:3]
    expected = (predictor.n_folds, batch, predictor.n_classes, height, width)
    if tuple(logits.shape) != expected:
        raise ValueError(f"the predictor returned logits of shape {logits.shape}, "
                         f"expected (K, B, C, H, W) = {expected}")
    if not np.isfinite(logits).all():
        raise ValueError("the predictor returned non-finite logits")


def _read_rows(slide: Slide, layout: InferenceLayout, part: _Stripe, workers: int
               ) -> Generator[tuple[int, NDArray[np.int64], NDArray[np.uint8]], None, None]:
    """``(row origin, tissue window columns, (n, patch rows, patch cols, 3) pixels)`` per
    lattice row; with ``workers`` ≥ 1 the next row is read on a thread while the current one
    is predicted.

    Each window is read on its own, from the level-0 pixel nearest its lattice origin: when
    the model's µm/px is not a whole multiple of the slide's, a read resamples, and a
    window cut from a longer read would see its pixels shifted by up to a level-0 pixel
    depending on where that read began, i.e. on the stripes.
    """
    rows = layout.window_rows()
    patch_rows, patch_cols = layout.patch
    factor = layout.factor

    def read(index: int) -> tuple[int, NDArray[np.int64], NDArray[np.uint8]]:
        cols = part.cols[part.on_tissue[index]]
        y = int(rows[index])
        pixels = np.stack([slide.read_region(round(int(x) * factor), round(y * factor),
                                             patch_cols, patch_rows, layout.mpp)
                           for x in cols])
        return y, cols, pixels

    wanted = [i for i in range(rows.size) if part.on_tissue[i].any()]
    if workers <= 0:
        for index in wanted:
            yield read(index)
        return
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="inference-read") as executor:
        ahead: Future[tuple[int, NDArray[np.int64], NDArray[np.uint8]]] | None = None
        try:
            for number, index in enumerate(wanted):
                current = ahead or executor.submit(read, index)
                ahead = executor.submit(read, wanted[number + 1]) \
                    if number + 1 < len(wanted) else None
                yield current.result()
        finally:
            if ahead is not None:
                ahead.cancel()


__all__ = ["DEFAULT_STEP", "PIXELS_PER_BATCH", "Normalization", "Progress", "SlidePrediction",
           "predict_slide"]
