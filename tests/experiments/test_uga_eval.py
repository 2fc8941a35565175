"""`pathloop eval uga` end to end on a small MoNuSeg split with a real (very short) nnU-Net."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from pathloop.client.errors import InputError
from pathloop.client.experiments import (
    ArmResult,
    UgaEvalConfig,
    UgaEvalResult,
    run_uga_eval,
    write_report,
)
from pathloop.client.experiments.monuseg import MONUSEG_MPP, list_images, read_nucleus_mask
from pathloop.client.experiments.uga_report import OVERALL, Column, dice_of, markdown
from pathloop.client.experiments.uga_stats import Spread, arm_spread, paired_difference, verdict
from pathloop.client.segmentation import TINY, ModelCard
from pathloop.client.store import Store

pytestmark = pytest.mark.realdata

SHORT = TINY.with_overrides(n_folds=2, num_epochs=1, iterations_per_epoch=3,
                            val_iterations_per_epoch=1)
# Bladder (2 training images) is the baseline; colon (2 training + 1 test) the target centre
# with 1 pool image and 2 held out.
SMALL = UgaEvalConfig(baseline_centres=("bladder",), target_centres=("colon",), n_pool=1,
                      ks=(2, 4), draws=(3,), baseline_profile=SHORT,
                      retrain_profile=SHORT, control=False)


@pytest.fixture(scope="module")
def monuseg(shared_data: Path) -> Path:
    return shared_data / "nuclei" / "monuseg"


@pytest.mark.slow
def test_small_run_trains_ranks_corrects_and_reports(monuseg: Path, tmp_path: Path) -> None:
    messages: list[str] = []
    result = run_uga_eval(monuseg, tmp_path / "run", SMALL,
                          progress=lambda message, done, total: messages.append(message))
    arms = {(a.centre, a.arm, a.k, a.draw) for a in result.arms}
    assert arms == {("baseline centres", "baseline", 0, None), ("colon", "baseline", 0, None),
                    ("colon", "uga", 2, 3), ("colon", "uga", 4, 3), ("colon", "random", 2, 3),
                    ("colon", "random", 4, 3)}
    held_out = result.centres["colon"]["held_out"]
    assert len(held_out) == 2 and "TCGA-A6-6782-01A-01-BS1" in held_out  # the test image
    for arm in result.arms:
        assert all(0.0 <= d <= 1.0 for d in arm.dice.values())
    # The top 2 of a strategy are the first 2 of its top 4 (nested, as in the paper).
    uga = {a.k: a for a in result.arms if a.arm == "uga"}
    assert [p.x for p in uga[4].selected[:2]] == [p.x for p in uga[2].selected]
    scores = [p.score_mean for p in uga[4].selected]
    assert scores == sorted(scores, reverse=True)
    assert result.candidates["colon"] >= 16  # one 500² image: 4×4 patches of 128 px

    with _open(tmp_path / "run") as store:
        corrections = store.latest_corrections()
        retrained = store.get_model_version(uga[4].model_version_id)
    # The union of both strategies' patches was corrected once each; lineage recorded.
    assert 4 <= len(corrections) <= 8
    assert retrained.parent_id == result.arms[0].model_version_id
    assert len(retrained.provenance["corrections"]) == 4
    assert ModelCard.read(retrained.weights_uri or "").profile["seed"] == 3  # the draw's

    _check_every_dice(result, monuseg, tmp_path / "run")

    report, plot = write_report(result, tmp_path / "report")
    text = report.read_text()
    assert "| colon | 2 |" in text and "| **overall** |" in text
    assert plot.stat().st_size > 10_000 and plot.read_bytes()[:4] == b"\x89PNG"
    assert UgaEvalResult.read(tmp_path / "run" / "uga_eval.json") == result
    assert messages[-1] == "done"


def _check_every_dice(result: UgaEvalResult, monuseg: Path, run: Path) -> None:
    """Each reported Dice recomputed here: the prediction raster the arm's own model version
    left in the store against the expert mask brought to the raster's size, with the formula
    written out. A score of another version, another image or another formula fails."""
    images = {image.stem: image for image in list_images(monuseg)}
    checked = 0
    with _open(run) as store:
        slides = {slide.name: slide for slide in store.list_slides()}
        for arm in result.arms:
            assert arm.dice, arm
            for stem, reported in arm.dice.items():
                slide = next(s for name, s in slides.items() if Path(name).stem == stem)
                rasters = [r for r in store.rasters.list_rasters(slide.id, "prediction")
                           if r.model_version_id == arm.model_version_id]
                assert len(rasters) == 1, (arm, stem)
                predicted = np.asarray(store.rasters.open_raster(rasters[0]).read(0)) > 0
                assert rasters[0].mpp == pytest.approx(result.config["model_mpp"])
                truth = read_nucleus_mask(images[stem], (slide.height, slide.width))
                size = (round(slide.width * MONUSEG_MPP / rasters[0].mpp),
                        round(slide.height * MONUSEG_MPP / rasters[0].mpp))
                assert predicted.shape == (size[1], size[0])
                expert = np.asarray(Image.fromarray(truth * 255).resize(
                    size, Image.Resampling.NEAREST)) > 0
                overlap = np.count_nonzero(predicted & expert)
                total = np.count_nonzero(predicted) + np.count_nonzero(expert)
                assert reported == pytest.approx(2 * overlap / total, abs=5e-5), (arm, stem)
                checked += 1
    assert checked == sum(len(arm.dice) for arm in result.arms) >= 6


def _open(run: Path) -> Store:
    from pathloop.client.settings import SiteSettings

    return Store.open(SiteSettings(site_id="uga-eval", data_dir=run / "site"))


def _arm(centre: str, arm: str, k: int, draw: int | None, dice: dict[str, float]
         ) -> ArmResult:
    return ArmResult(centre, arm, k, draw, 1, dice)


def test_overall_pools_images_and_draws_give_mean_and_sd() -> None:
    result = UgaEvalResult(
        config=SMALL.to_json() | {"draws": [0, 1]},
        centres={"a": {"pool": ["p"], "held_out": ["x", "y"]},
                 "b": {"pool": ["q"], "held_out": ["z"]},
                 "baseline": {"train": ["t"], "held_out": []}},
        arms=[_arm("a", "baseline", 0, None, {"x": 0.5, "y": 0.7}),
              _arm("b", "baseline", 0, None, {"z": 0.9}),
              _arm("a", "random", 5, 0, {"x": 0.6, "y": 0.6}),
              _arm("a", "random", 5, 1, {"x": 0.8, "y": 0.8})],
        candidates={"a": 10, "b": 12}, seconds=1.0)
    assert dice_of(result, OVERALL, Column("baseline", 0)) == pytest.approx(0.7)
    assert dice_of(result, "a", Column("random", 5)) == pytest.approx(0.7)
    assert dice_of(result, "b", Column("random", 5)) is None
    # sd over the draws' means 0.6 and 0.8; no UGA arm here, so no paired row.
    assert "| a | 2 | 10 | 0.600 | – | 0.700 ± 0.141 |" in markdown(result)
    assert "| a | 5 |" not in markdown(result)


def test_the_paired_difference_is_taken_within_each_draw() -> None:
    # Draw 1 is a lucky training seed for both arms: the unpaired spreads are wide, the
    # paired differences (+0.02, +0.03, +0.025) are not.
    uga = {0: 0.62, 1: 0.83, 2: 0.715}
    drawn = {0: 0.60, 1: 0.80, 2: 0.69}
    arms = [_arm("a", "uga", 10, d, {"x": v}) for d, v in uga.items()]
    arms += [_arm("a", "random", 10, d, {"x": v}) for d, v in drawn.items()]
    result = UgaEvalResult(config=SMALL.to_json() | {"draws": [0, 1, 2]},
                           centres={"a": {"pool": ["p"], "held_out": ["x"]},
                                    "baseline": {"train": ["t"], "held_out": []}},
                           arms=[_arm("a", "baseline", 0, None, {"x": 0.5}), *arms],
                           candidates={"a": 10}, seconds=1.0)
    difference = paired_difference(result, "a", 10)
    assert difference is not None
    assert difference.values == pytest.approx((0.02, 0.03, 0.025))
    assert difference.sd == pytest.approx(0.005)
    low, high = difference.interval() or (0, 0)
    assert (low, high) == pytest.approx((0.025 - 4.3027 * 0.005 / 3**0.5,
                                         0.025 + 4.3027 * 0.005 / 3**0.5), abs=1e-4)
    assert verdict(difference).endswith("UGA better (the 95% interval lies above 0)")
    assert arm_spread(result, "a", "uga", 10).sd > 0.1  # type: ignore[union-attr]
    text = markdown(result)
    assert "| a | 10 | +0.020, +0.030, +0.025 | +0.025 ± 0.005 | [+0.013, +0.037] |" in text
    assert "UGA ahead in 3 of 3 draws" in text


@pytest.mark.parametrize(("values", "words"), [
    ((0.01, -0.02, 0.015), "UGA ahead in 2 of 3 draws; no difference shown"),
    ((-0.05, -0.04, -0.06), "UGA ahead in 0 of 3 draws; random better"),
    ((0.01,), "UGA ahead in 1 of 1 draws; one draw has no spread to judge by"),
])
def test_the_verdict_says_what_the_draws_support(values: tuple[float, ...], words: str) -> None:
    assert verdict(Spread(values)).startswith(words)


def test_bad_configurations_are_refused_before_anything_runs(monuseg: Path,
                                                             tmp_path: Path) -> None:
    def run(**changes: object) -> None:
        config = UgaEvalConfig(**{**SMALL.__dict__, **changes})  # type: ignore[arg-type]
        run_uga_eval(monuseg, tmp_path / "x", config)

    with pytest.raises(InputError, match="centre 'liver': not a MoNuSeg organ"):
        run(target_centres=("liver",))
    with pytest.raises(InputError, match=r"both baseline and target"):
        run(target_centres=("bladder",))
    with pytest.raises(InputError, match="centre 'colon': 3 images, too few"):
        run(n_pool=3)
    with pytest.raises(InputError, match=r"draws must be distinct seeds >= 0, got \(1, 1\)"):
        run(draws=(1, 1))
    (tmp_path / "x").mkdir()
    (tmp_path / "x" / "old").write_text("")
    with pytest.raises(InputError, match="not empty"):
        run()
    assert not (tmp_path / "x" / "site").exists()
