"""Slide inference with a real tiny nnU-Net on a real slide: no tile seams, no dependence on
where the tile grid falls.

Before sliding windows (tiles of 576 px whose 512-px cores were written), the same checks
measured on this slide: mean |Δ| 0.21 (probability) and 0.23 (uncertainty) on tissue between
the grid at 0 and shifted by 256 px, and steps across the 512-px tile borders 4.7× (probability)
and 4.3× (uncertainty) the steps elsewhere: both tests failed.

What the grid still moves: with windows on a lattice fixed to the slide, shifting the bands,
stripes and chunks by half a tile only changes the order of float additions (Δ ≈ 1e-3,
float16 storage). Moving the window *lattice* itself by half a step (32 px) changes which
context each window sees; a network trained for a few seconds differs there by mean |Δ|
≈ 0.04, as nnU-Net's own predictor does (0.02 on MoNuSeg) - the networks' own
position-dependence, which better training shrinks, not the tiling's.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pytest
from support.records import add_slide

from pathloop.client.inference import InferenceLayout, Region, SlidePrediction, predict_slide
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.tiling import compute_tissue_mask
from pathloop.client.wsi import open_slide

if TYPE_CHECKING:
    from pathloop.client.segmentation import Ensemble

TILE = 512  # the raster chunk, the band height, and the old tiles' core


@pytest.fixture(scope="module")
def predicted(ensemble: Ensemble, cmu_svs: Path, tmp_path_factory: pytest.TempPathFactory
              ) -> dict[str, dict[str, np.ndarray]]:
    """The CMU slide predicted three ways: grid at 0; grid shifted by half a tile (and
    narrower stripes); windows that do not overlap (``step=1``, the seam control)."""
    folder = tmp_path_factory.mktemp("seamless")
    maps: dict[str, dict[str, np.ndarray]] = {}
    with Store.open(SiteSettings(site_id="site-a", data_dir=folder)) as store, \
            open_slide(cmu_svs) as slide:
        meta = slide.metadata
        record = add_slide(store, "cmu", meta.width, meta.height, meta.mpp)
        tissue = compute_tissue_mask(slide)
        runs = {"grid": {}, "shifted": {"phase": TILE // 2, "stripe": 2 * TILE},
                "no-overlap": {"step": 1.0, "stripe": 2 * TILE}}
        for name, options in runs.items():
            result = predict_slide(slide, tissue, ensemble, store.rasters, record.id,
                                   **options)  # type: ignore[arg-type]
            maps[name] = _maps(store, result)
        layout = InferenceLayout.for_slide(slide, mpp=ensemble.mpp, patch=ensemble.patch_size)
        whole = Region(0, 0, *layout.shape)
        maps["tissue"] = {"mask": layout.tissue_window(tissue, whole)}
    return maps


def _maps(store: Store, result: SlidePrediction) -> dict[str, np.ndarray]:
    return {kind: store.rasters.open_raster(result.rasters[kind]).read().astype(np.float32)
            for kind in ("probability", "uncertainty")}


def test_shifting_the_tile_grid_by_half_a_tile_leaves_the_maps_unchanged(
        predicted: dict[str, dict[str, np.ndarray]]) -> None:
    tissue = predicted["tissue"]["mask"]
    assert tissue.mean() > 0.3
    for kind in ("probability", "uncertainty"):
        a, b = predicted["grid"][kind], predicted["shifted"][kind]
        assert a[tissue].std() > 0.05, kind  # the maps say something
        difference = float(np.abs(a - b)[tissue].mean())
        # Tolerance 0.01: a tenth of the smallest probability step a reader sees in the
        # viewer's colour scale, and 1/50 of the spread of the maps on tissue.
        assert difference <= 0.01, (kind, difference)


def _step_ratio(values: np.ndarray, tissue: np.ndarray, period: int, offset: int) -> float:
    """Mean |step| between neighbouring pixels across the lines ``offset + k * period``
    (both axes) over the mean |step| elsewhere, on tissue."""
    ratios = []
    for axis in (0, 1):
        step = np.abs(np.diff(values, axis=axis))
        both = tissue[:-1] & tissue[1:] if axis == 0 else tissue[:, :-1] & tissue[:, 1:]
        index = np.arange(step.shape[axis])
        across = (index % period) == (offset - 1) % period  # between offset-1 and offset
        mask = np.expand_dims(across, 1 - axis)
        at_lines = step[both & mask]
        elsewhere = step[both & ~mask]
        ratios.append(float(at_lines.mean() / elsewhere.mean()))
    return max(ratios)


def test_no_seams_across_tile_chunk_and_stripe_borders(
        predicted: dict[str, dict[str, np.ndarray]]) -> None:
    tissue = predicted["tissue"]["mask"]
    for run, offset in (("grid", 0), ("shifted", TILE // 2)):
        for kind in ("probability", "uncertainty"):
            ratio = _step_ratio(predicted[run][kind], tissue, TILE, offset)
            assert ratio <= 1.2, (run, kind, ratio)
    # The control: windows that do not overlap step at their 128-px borders, and the
    # measure sees it (so the bound above can fail).
    for kind in ("probability", "uncertainty"):
        assert _step_ratio(predicted["no-overlap"][kind], tissue, 128, 0) > 1.5, kind
