"""The precision the fold networks predict in: float32 as trained, bfloat16 under autocast.

bfloat16 keeps 8 bits of mantissa, so its softmax differs from float32's by a few 1e-3; the
bounds below are what a map a pathologist reads and a ranking can tolerate (the demo's
held-out Dice moved by at most 0.0003, docs/inference.md).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pytest
from support.nnunet import TrainedModel

from pathloop.client.errors import ConfigError
from pathloop.client.segmentation import Case
from pathloop.client.settings import SiteSettings

if TYPE_CHECKING:
    from pathloop.client.segmentation import Ensemble


@pytest.fixture(scope="module")
def both(tiny_model: TrainedModel) -> tuple[Ensemble, Ensemble]:
    from pathloop.client.segmentation import Ensemble

    return (Ensemble.load(tiny_model.model_dir, precision="float32"),
            Ensemble.load(tiny_model.model_dir, precision="bfloat16"))


def test_bfloat16_stays_close_to_float32(both: tuple[Ensemble, Ensemble],
                                         monuseg_cases: list[Case]) -> None:
    exact, reduced = both
    assert (exact.precision, reduced.precision) == ("float32", "bfloat16")
    images = np.stack([c.image for c in monuseg_cases[:4]])
    p32 = exact.predict_folds(images)
    p16 = reduced.predict_folds(images)
    assert p16.dtype == np.float32
    np.testing.assert_allclose(p16.sum(axis=2), 1.0, atol=1e-5)
    difference = np.abs(p16 - p32)
    assert difference.max() > 0  # autocast was applied: bfloat16 rounds
    assert difference.mean() < 0.01, difference.mean()
    agree = (p16.mean(axis=0).argmax(axis=1) == p32.mean(axis=0).argmax(axis=1)).mean()
    assert agree > 0.99, agree


def test_bfloat16_batches_do_not_change_results(both: tuple[Ensemble, Ensemble],
                                                monuseg_cases: list[Case]) -> None:
    # Slide inference batches windows as they come; a window's maps must not depend on
    # which others share its batch, or the maps would depend on the stripes again.
    reduced = both[1]
    images = np.stack([c.image[:128, :128] for c in monuseg_cases[:5]])
    whole = reduced.predict_logits(images, batch_size=5)
    one_by_one = reduced.predict_logits(images, batch_size=1)
    np.testing.assert_allclose(whole, one_by_one, atol=1e-3)


def test_auto_follows_the_cpu(tiny_model: TrainedModel, monkeypatch: pytest.MonkeyPatch
                              ) -> None:
    from pathloop.client.segmentation import Ensemble, devices

    monkeypatch.setattr(devices, "native_bfloat16", lambda: False)
    assert Ensemble.load(tiny_model.model_dir).precision == "float32"
    monkeypatch.setattr(devices, "native_bfloat16", lambda: True)
    assert Ensemble.load(tiny_model.model_dir).precision == "bfloat16"
    # On any device but the CPU, auto keeps float32: bfloat16 is only chosen where measured.
    assert devices.autocast_dtype("auto", devices.torch_device("meta")) is None


def test_unknown_precision_is_refused(tiny_model: TrainedModel) -> None:
    from pathloop.client.segmentation import Ensemble

    with pytest.raises(ConfigError, match=r"'float16'.*auto, float32, bfloat16"):
        Ensemble.load(tiny_model.model_dir, precision="float16")  # type: ignore[arg-type]


def test_site_setting_is_checked() -> None:
    assert SiteSettings().inference.precision == "auto"
    assert SiteSettings.from_mapping(
        {"inference": {"precision": "float32"}}).inference.precision == "float32"
    with pytest.raises(ConfigError, match=r"inference\.precision"):
        SiteSettings.from_mapping({"inference": {"precision": "half"}})
