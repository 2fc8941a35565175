"""Slide-level ensemble inference: every fold on every tissue tile, stitched into zarr.

:func:`predict_slide` reads the slide's tissue tiles at the model's resolution, runs every
fold on them in batches, derives the fold mean, argmax and uncertainty maps of each tile's
core and writes them straight into the five prediction rasters (see
:mod:`pathloop.client.inference.stitching`). Memory is bounded by two batches of tiles and
their ``(K, B, C, H, W)`` probabilities, whatever the slide's size: nothing slide-sized is
ever allocated (the tissue mask is a capped thumbnail).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack, closing
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pathloop.client.inference.layout import InferenceBlock, InferenceLayout
from pathloop.client.inference.stitching import MapKind, MapStitcher
from pathloop.client.segmentation.protocol import FoldPredictor
from pathloop.client.store import RasterRecord, RasterStore
from pathloop.client.tiling import TissueMask
from pathloop.client.uncertainty import EPS, uncertainty_maps
from pathloop.client.wsi import RGBImage, Slide

logger = logging.getLogger(__name__)

Progress = Callable[[int, int], None]
"""Called with ``(tiles done, tiles in all)`` after every batch."""

DEFAULT_TILE_SIZE = 576
"""Default tile edge in pixels: a 512-pixel core (one raster chunk) plus 64 of overlap."""
DEFAULT_OVERLAP = 64


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
    n_tiles:
        Tiles predicted (cores touching tissue).
    seconds:
        Wall time.
    """

    rasters: Mapping[MapKind, RasterRecord]
    mpp: float
    shape: tuple[int, int]
    n_tiles: int
    seconds: float

    @property
    def prediction(self) -> RasterRecord:
        """The uint8 argmax raster."""
        return self.rasters[MapKind.PREDICTION]

    @property
    def uncertainty(self) -> RasterRecord:
        """The float16 UGA uncertainty raster."""
        return self.rasters[MapKind.UNCERTAINTY]


def predict_slide(
    slide: Slide,
    tissue: TissueMask,
    predictor: FoldPredictor,
    rasters: RasterStore,
    slide_id: int,
    *,
    model_version_id: int | None = None,
    tile_size: int = DEFAULT_TILE_SIZE,
    overlap: int = DEFAULT_OVERLAP,
    batch_size: int = 4,
    mask_background: bool = True,
    workers: int = 2,
    progress: Progress | None = None,
) -> SlidePrediction:
    """Predict a slide with every fold and store the prediction and uncertainty rasters.

    Parameters
    ----------
    slide:
        The open slide (level-0 resolution known).
    tissue:
        The slide's tissue mask; only cores touching it are predicted.
    predictor:
        The fold ensemble; tiles are read at ``predictor.mpp`` µm/px.
    rasters:
        Where the rasters go (``store.rasters``).
    slide_id:
        The slide's record id.
    model_version_id:
        The model version recorded on every raster.
    tile_size:
        Edge of the tiles given to the predictor, in pixels at ``predictor.mpp``.
    overlap:
        Pixels by which neighbouring tiles overlap; only each tile's central
        ``tile_size - overlap`` core is written, so ``overlap // 2`` should cover the
        network's receptive field for seamless maps.
    batch_size:
        Tiles per call of ``predictor.predict_folds``.
    mask_background:
        Set pixels off the tissue mask to background with no uncertainty (otherwise the
        model's output is kept on glass inside predicted tiles).
    workers:
        Threads reading the next batch of tiles while the current one is predicted
        (0: read in the calling thread).
    progress:
        Called with ``(tiles done, tiles in all)`` after every batch.

    Returns
    -------
    SlidePrediction
        The committed raster records, all ``(H, W)`` at ``predictor.mpp`` with pyramids.

    Raises
    ------
    MissingResolutionError
        The slide has no µm/px.
    RegionError
        Impossible tile geometry, or a tissue mask of another slide.
    ValueError
        The predictor returned an array of another shape than ``(K, B, C, H, W)``.
    """
    started = time.perf_counter()
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    n_classes = int(predictor.n_classes)
    if not 2 <= n_classes <= 256:
        raise ValueError(f"the predictor must have 2 to 256 classes, got {n_classes}")
    layout = InferenceLayout.for_slide(slide, mpp=predictor.mpp, tile_size=tile_size,
                                       overlap=overlap)
    layout.check_tissue(tissue)
    blocks = layout.blocks(tissue)
    attributes: dict[str, Any] = {
        "n_folds": int(predictor.n_folds), "n_classes": n_classes, "tile_size": tile_size,
        "overlap": overlap, "eps": EPS, "mask_background": mask_background,
        "tissue_mpp": tissue.mpp,
    }
    logger.info("predicting %d tiles of %d px at %.3g µm/px (%d folds)", len(blocks),
                tile_size, layout.mpp, predictor.n_folds)
    done = 0
    with MapStitcher(rasters, slide_id, layout, model_version_id=model_version_id,
                     attributes=attributes) as stitcher, ExitStack() as stack:
        # closing(): reads in flight finish before an error (or a cancel raised by
        # ``progress``) lets the caller close the slide.
        batches = stack.enter_context(
            closing(_read_batches(slide, layout, blocks, batch_size, workers)))
        for batch in batches:
            images = np.stack([pixels for _, pixels in batch])
            probs = predictor.predict_folds(images)
            _check_output(probs, predictor, images.shape)
            for index, (block, _) in enumerate(batch):
                maps = uncertainty_maps(_core(probs, index, block, layout.margin))
                window = layout.tissue_window(tissue, block) if mask_background else None
                stitcher.write(block, maps, window)
            del images, probs
            done += len(batch)
            if progress is not None:
                progress(done, len(blocks))
    return SlidePrediction(stitcher.records, layout.mpp, layout.shape, len(blocks),
                           time.perf_counter() - started)


def _core(probs: NDArray[np.float32], index: int, block: InferenceBlock,
          margin: int) -> NDArray[np.float32]:
    """``(K, C, h, w)`` view of tile ``index``'s core in ``(K, B, C, H, W)`` probabilities."""
    return probs[:, index, :, margin:margin + block.height, margin:margin + block.width]


def _check_output(probs: NDArray[Any], predictor: FoldPredictor,
                  images: tuple[int, ...]) -> None:
    batch, height, width = images[:3]
    expected = (predictor.n_folds, batch, predictor.n_classes, height, width)
    if tuple(probs.shape) != expected:
        raise ValueError(f"the predictor returned probabilities of shape {probs.shape}, "
                         f"expected (K, B, C, H, W) = {expected}")


def _read_batches(slide: Slide, layout: InferenceLayout, blocks: Sequence[InferenceBlock],
                  batch_size: int, workers: int
                  ) -> Generator[list[tuple[InferenceBlock, RGBImage]], None, None]:
    """Batches of ``(block, (tile, tile, 3) uint8 RGB)``, the next batch read ahead.

    At most two batches of pixels exist at a time.
    """
    size = layout.tile_size

    def read(block: InferenceBlock) -> RGBImage:
        return slide.read_region(block.read_x, block.read_y, size, size, layout.mpp)

    batches = [blocks[i:i + batch_size] for i in range(0, len(blocks), batch_size)]
    if workers <= 0:
        for batch in batches:
            yield [(block, read(block)) for block in batch]
        return
    executor = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="inference-read")
    try:
        ahead: list[Future[RGBImage]] = []
        for number, batch in enumerate(batches):
            current = ahead or [executor.submit(read, block) for block in batch]
            following = batches[number + 1] if number + 1 < len(batches) else []
            ahead = [executor.submit(read, block) for block in following]
            yield [(block, future.result()) for block, future in
                   zip(batch, current, strict=True)]
    finally:
        executor.shutdown(wait=True, cancel_futures=True)


__all__ = ["DEFAULT_OVERLAP", "DEFAULT_TILE_SIZE", "Progress", "SlidePrediction",
           "predict_slide"]
