"""The UGA loop on the demo's synthetic sites, with a real (tiny) nnU-Net ensemble."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pathloop.client.demo import run_demo, site_settings
from pathloop.client.errors import InputError
from pathloop.client.segmentation import TINY
from pathloop.client.store import PatchBox, Store
from pathloop.client.usecases.loop import CORRECTION_RASTER, save_correction_mask
from pathloop.client.usecases.models import MODEL_KIND

QUICK = TINY.with_overrides(num_epochs=1, iterations_per_epoch=3, val_iterations_per_epoch=1)


@pytest.mark.slow
def test_demo_loop_trains_ranks_corrects_and_retrains(tmp_path: Path) -> None:
    summary = run_demo(tmp_path, n_sites=2, slides_per_site=2, size=3072, k=3,
                       profiles=(QUICK, QUICK), rounds=0)
    assert [o.site_id for o in summary.outcomes] == ["site-b"]
    outcome = summary.outcomes[0]
    assert outcome.corrections == 3
    assert 0.0 <= outcome.dice_before <= 1.0 and 0.0 <= outcome.dice_after <= 1.0
    assert outcome.mean_uncertainty_top > 0
    # One scorer for the whole table: the held-out slide, baseline and retrained.
    results = summary.results
    assert results is not None and results.k == 3 and results.n_rounds == 0
    site_a, site_b = results.sites
    assert site_a.corrected is None and site_a.corrections == 0
    assert site_b.baseline == outcome.dice_before and site_b.corrected == outcome.dice_after
    assert site_b.morphology == "lobular" and site_b.stain == "purple"
    assert (site_b.correction_seconds or 0) > 0
    assert list(results.seconds)[:2] == ["sample slides, ingestion and tiling",
                                        "site-a: baseline training"]
    assert json.loads((tmp_path / "demo-summary.json").read_text())["sites"][1]["corrected"] \
        == outcome.dice_after
    with Store.open(site_settings(tmp_path, "site-b")) as store:
        pool = store.list_slides()[0]
        for kind in ("prediction", "uncertainty", "entropy", "mutual-information"):
            assert store.rasters.latest(pool.id, kind) is not None, kind
        ranking = store.latest_ranking(pool.id)
        assert ranking is not None
        patches = store.ranked_patches(ranking.id)
        assert [p.status for p in patches] == ["corrected"] * 3
        assert [p.rank for p in patches] == [1, 2, 3]
        assert patches[0].score_mean >= patches[-1].score_mean
        corrections = store.latest_corrections("site-b")
        assert len(corrections) == 3
        assert all(c.raster_id is not None and c.version == 1 for c in corrections)
        # Lineage: the retrained version names its parent and the corrections it used.
        retrained = store.get_model_version(store.get_model_version(1).id + 1)
        assert retrained.kind == MODEL_KIND
        assert retrained.parent_id == 1
        assert sorted(retrained.provenance["corrections"]) == sorted(c.id for c in corrections)
        # A mask of the wrong size for its patch is refused and nothing is stored.
        box = PatchBox(pool.id, 0, 0, 512, 512, 2.0)
        with pytest.raises(InputError, match=r"must be uint8 of shape \(128, 128\)"):
            save_correction_mask(store, box, np.zeros((100, 100), np.uint8), author="x")
        assert len(store.rasters.list_rasters(pool.id, CORRECTION_RASTER)) == 3
