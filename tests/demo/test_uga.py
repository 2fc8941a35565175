"""The UGA loop on the demo's synthetic sites, with a real (tiny) nnU-Net ensemble."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import tifffile

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
        # The simulated pathologist's masks are the slide's ground truth (tumour, label 2 of
        # the sample's label image) under each patch, read here straight from the file.
        labels = tifffile.imread(pool.path.with_name(f"{pool.path.stem}.labels.tiff"))
        assert {c.ranked_patch_id for c in corrections} == {p.id for p in patches}
        for correction in corrections:
            box = correction.patch
            step = round(box.mpp / pool.mpp_x)
            truth = labels[box.y:box.y + box.height:step, box.x:box.x + box.width:step] == 2
            stored = store.rasters.open_raster(correction.raster_id).read(0)
            assert stored.shape == (128, 128)
            expected = np.zeros((128, 128), np.uint8)  # past the slide's edge: background
            expected[:truth.shape[0], :truth.shape[1]] = truth
            np.testing.assert_array_equal(stored, expected)
        # Lineage: the retrained version names its parent and the corrections it used.
        retrained = store.get_model_version(store.get_model_version(1).id + 1)
        assert retrained.kind == MODEL_KIND
        assert retrained.parent_id == 1
        assert sorted(retrained.provenance["corrections"]) == sorted(c.id for c in corrections)
        # The Dice the table reports, recomputed here from the stored prediction of the
        # held-out slide and its label image.
        held_out = store.list_slides()[1]
        truth_full = tifffile.imread(
            held_out.path.with_name(f"{held_out.path.stem}.labels.tiff")) == 2
        for version_id, reported in ((1, outcome.dice_before), (retrained.id,
                                                                 outcome.dice_after)):
            raster = [r for r in store.rasters.list_rasters(held_out.id, "prediction")
                      if r.model_version_id == version_id][-1]
            predicted = store.rasters.open_raster(raster).read(0) == 1
            step = round(raster.mpp / held_out.mpp_x)
            truth = np.zeros_like(predicted)
            sampled = truth_full[::step, ::step][:truth.shape[0], :truth.shape[1]]
            truth[:sampled.shape[0], :sampled.shape[1]] = sampled
            both = np.logical_and(predicted, truth).sum()
            expected = 2 * both / (predicted.sum() + truth.sum())
            assert reported == pytest.approx(expected, abs=1e-6), version_id
        # A mask of the wrong size for its patch is refused and nothing is stored.
        box = PatchBox(pool.id, 0, 0, 512, 512, 2.0)
        with pytest.raises(InputError, match=r"must be uint8 of shape \(128, 128\)"):
            save_correction_mask(store, box, np.zeros((100, 100), np.uint8), author="x")
        assert len(store.rasters.list_rasters(pool.id, CORRECTION_RASTER)) == 3
