"""The UGA loop's first half on a synthetic slide: predict with every fold, then rank."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from support.folds import ThresholdFolds
from support.records import add_slide

from pathloop.client.inference import predict_slide
from pathloop.client.ranking import PatchSpec, RandomForegroundStrategy, rank_slide
from pathloop.client.sample import read_mask_region, write_synthetic_slide
from pathloop.client.store import Store
from pathloop.client.tiling import compute_tissue_mask
from pathloop.client.wsi import open_slide


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A 2048×1536 synthetic slide at 0.5 µm/px and its label mask (0 glass, 1, 2 tumour)."""
    made = write_synthetic_slide(tmp_path_factory.mktemp("loop"), "slide", width=2048,
                                 height=1536, seed=11)
    return made.slide_path, made.label_mask_path


def test_predicted_uncertainty_ranks_tissue_patches_and_records_the_model(
        store: Store, synthetic: tuple[Path, Path]) -> None:
    slide_path, labels_path = synthetic
    spec = PatchSpec(size=128, mpp=1.0)  # 256 level-0 px: an 8 × 6 grid
    with open_slide(slide_path) as slide:
        record = add_slide(store, "slide", 2048, 1536, 0.5)
        version = store.add_model_version(name="fake", kind="uga-ensemble")
        tissue = compute_tissue_mask(slide)
        predict_slide(slide, tissue, ThresholdFolds(mpp=1.0, radius=2), store.rasters,
                      record.id, model_version_id=version.id)
        uga = rank_slide(store, record.id, slide, k=5, spec=spec, tissue=tissue)
        baseline = rank_slide(store, record.id, slide, k=5, spec=spec, tissue=tissue,
                              strategy=RandomForegroundStrategy(), seed=3)
    assert uga.ranking.model_version_id == version.id
    assert uga.ranking.params["raster_kind"] == "uncertainty"
    assert len(uga.selected) == 5 and len(baseline.selected) == 5
    uga_means = [p.score_mean for p in uga.selected]
    assert uga_means == sorted(uga_means, reverse=True)
    random_means = [p.score_mean for p in baseline.selected]
    assert uga_means[0] >= max(random_means) and np.mean(uga_means) > np.mean(random_means)
    for patch in uga.selected + baseline.selected:
        labels = read_mask_region(labels_path, patch.x, patch.y, min(patch.width, 2048 -
                                  patch.x), min(patch.height, 1536 - patch.y))
        assert np.mean(labels > 0) > 0.2  # on the slide's true tissue
