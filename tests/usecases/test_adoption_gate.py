"""Sites gate what they adopt: round settings within the site's limits, and a new model
version current only if its held-out Dice is not worse than the current model's."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
from support.gate_site import forced_arrays, gate_site, round_config

from pathloop.client.errors import ConfigError, ProtocolError, RoundLimitError
from pathloop.client.settings import FederationSettings, SiteSettings
from pathloop.client.store import ModelVersionRecord, Store
from pathloop.client.usecases import rounds
from pathloop.client.usecases.adoption import (
    current_model,
    gate_trained_version,
    gate_version,
    refused_versions,
)
from pathloop.client.usecases.models import MODEL_KIND, model_dir
from pathloop.client.usecases.rounds import LocalData, RoundConfig, evaluate_round
from pathloop.server.contract import PROTOCOL_VERSION, ConfigKey, MetricKey, plans_digest

LIMITS = FederationSettings()  # max-local-epochs 100, max-learning-rate 0.1, max-proximal-mu 10


def _config(**settings_of_round: object) -> dict[str, object]:
    return {ConfigKey.PROTOCOL: PROTOCOL_VERSION, ConfigKey.PLANS: "{}",
            ConfigKey.PLANS_SHA256: plans_digest({}), ConfigKey.GLOBAL_VERSION: 1,
            **settings_of_round}


@pytest.mark.parametrize(("key", "value"), [
    (ConfigKey.LEARNING_RATE, math.nan), (ConfigKey.LEARNING_RATE, math.inf),
    (ConfigKey.LEARNING_RATE, -0.01), (ConfigKey.LEARNING_RATE, 0.0),
    (ConfigKey.LEARNING_RATE, 0.5), (ConfigKey.LEARNING_RATE, "0.01"),
    (ConfigKey.LOCAL_EPOCHS, -1), (ConfigKey.LOCAL_EPOCHS, 0), (ConfigKey.LOCAL_EPOCHS, 10**6),
    (ConfigKey.LOCAL_EPOCHS, 2.5), (ConfigKey.LOCAL_EPOCHS, math.nan),
    (ConfigKey.LOCAL_EPOCHS, True), (ConfigKey.PROXIMAL_MU, math.nan),
    (ConfigKey.PROXIMAL_MU, -0.1), (ConfigKey.PROXIMAL_MU, 1e9), (ConfigKey.PROXIMAL_MU, -math.inf),
    (ConfigKey.ROUND, -1), (ConfigKey.GLOBAL_VERSION, -3), (ConfigKey.GLOBAL_VERSION, math.nan),
])  # fmt: skip
def test_a_round_outside_the_site_s_limits_is_refused_naming_the_key(key: str,
                                                                     value: Any) -> None:
    with pytest.raises(RoundLimitError, match=f"'{key}' = ") as refused:
        RoundConfig.parse(_config(**{key: value}), LIMITS)
    assert refused.value.key == key and isinstance(refused.value, ProtocolError)
    assert "this site allows" in str(refused.value)


def test_the_limits_are_the_site_s_own() -> None:
    strict = FederationSettings(max_local_epochs=5, max_learning_rate=0.01, max_proximal_mu=0.5)
    fine = RoundConfig.parse(_config(**{ConfigKey.LOCAL_EPOCHS: 5, ConfigKey.LEARNING_RATE: 0.01,
                                        ConfigKey.PROXIMAL_MU: 0.5}), strict)
    assert (fine.local_epochs, fine.learning_rate, fine.proximal_mu) == (5, 0.01, 0.5)
    with pytest.raises(RoundLimitError, match=r"max-local-epochs"):
        RoundConfig.parse(_config(**{ConfigKey.LOCAL_EPOCHS: 6}), strict)
    with pytest.raises(RoundLimitError, match=r"max-learning-rate"):
        RoundConfig.parse(_config(**{ConfigKey.LEARNING_RATE: 0.02}), strict)
    assert RoundConfig.parse(_config(**{ConfigKey.LOCAL_EPOCHS: 6}), LIMITS).local_epochs == 6


@pytest.mark.parametrize("key", ["max-learning-rate", "max-proximal-mu", "adopt-margin"])
def test_the_site_s_own_limits_must_be_finite(key: str) -> None:
    with pytest.raises(ConfigError, match=f"federation.{key}"):
        SiteSettings.from_mapping({"federation": {key: math.nan}})


def _stored(settings: SiteSettings, store: Store, name: str) -> ModelVersionRecord:
    version = store.latest_model_version(MODEL_KIND, name)
    assert version is not None
    return version


def test_a_worse_global_version_is_stored_but_not_made_current(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings, initial, foreground = gate_site(tmp_path)
    refreshed: list[str] = []
    monkeypatch.setattr(rounds, "refresh_worklists",
                        lambda s, st, version, k: refreshed.append(version.name) or 0)
    data = LocalData.from_settings(settings)
    background = forced_arrays(foreground, 0)
    with Store.open(settings) as store:
        worse = evaluate_round(settings, store, data, background,
                               RoundConfig.parse(round_config(settings, initial, 1), LIMITS))
        stored = store.latest_model_version(MODEL_KIND)
        assert stored is not None and stored.name.startswith("global-v0001-")
        assert Path(str(stored.weights_uri)).is_dir()  # kept, weights and all
        assert current_model(store) == initial
        assert store.current_model_version(MODEL_KIND) == initial
        assert [d.outcome for d in store.adoption_history(stored.id)] == ["held", "refused"]
        refusal = store.adoption_history(stored.id)[-1]
        assert refusal.dice == 0.0 and refusal.current_id == initial.id
        assert refusal.current_dice is not None and refusal.current_dice > 0.1
        assert refused_versions(store) == 1
        assert refreshed == []  # the worklists stay as they were
        assert worse == {MetricKey.PROTOCOL: float(PROTOCOL_VERSION), MetricKey.DICE: 0.0,
                         MetricKey.HELD_OUT: 3.0, MetricKey.ADOPTED: 0.0,
                         MetricKey.REFUSED: 1.0}

        better = evaluate_round(settings, store, data, foreground,
                                RoundConfig.parse(round_config(settings, initial, 2), LIMITS))
        adopted = current_model(store)
        assert adopted.name.startswith("global-v0002-") and adopted.parent_id == initial.id
        assert refreshed == [adopted.name]  # re-ranked with the adopted version only
        assert better[MetricKey.ADOPTED] == 1.0 and better[MetricKey.REFUSED] == 1.0
        assert better[MetricKey.DICE] == pytest.approx(refusal.current_dice)
        assert rounds.site_status(settings, store)[MetricKey.REFUSED] == 1.0


def _scored(store: Store, dice: dict[str, float]) -> dict[str, ModelVersionRecord]:
    return {name: store.add_model_version(name=name, kind=MODEL_KIND,
                                          held=None if name == "current" else "waiting")
            for name in dice}


@pytest.mark.parametrize(("candidate", "outcome"), [(0.60, "adopted"), (0.59, "adopted"),
                                                    (0.5801, "adopted"), (0.57, "refused")])
def test_the_margin_decides(tmp_path: Path, candidate: float, outcome: str) -> None:
    settings = SiteSettings(data_dir=tmp_path, federation=FederationSettings(adopt_margin=0.02))
    dice = {"current": 0.60, "candidate": candidate}
    with Store.open(settings) as store:
        versions = _scored(store, dice)
        decision = gate_version(settings, store, versions["candidate"],
                                lambda v: (dice[v.name], 4), actor="test")
        assert decision.outcome == outcome and decision.margin == 0.02
        assert (decision.dice, decision.current_dice) == (candidate, 0.60)
        expected = versions["candidate" if outcome == "adopted" else "current"]
        assert store.current_model_version(MODEL_KIND) == expected


@pytest.mark.parametrize("adopt", [True, False])
def test_without_held_out_tiles_the_setting_decides(tmp_path: Path, adopt: bool,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    settings = SiteSettings(data_dir=tmp_path,
                            federation=FederationSettings(adopt_without_held_out=adopt))
    with Store.open(settings) as store:
        versions = _scored(store, {"current": 0.6, "candidate": 0.0})
        decision = gate_version(settings, store, versions["candidate"], lambda v: (1.0, 0),
                                actor="test")
        assert decision.outcome == ("adopted" if adopt else "refused")
        assert decision.dice is None and "adopt-without-held-out" in decision.reason
        assert "no held-out tiles" in caplog.text
        assert store.current_model_version(MODEL_KIND) == versions[
            "candidate" if adopt else "current"]


def test_a_version_the_site_trained_passes_the_same_gate(tmp_path: Path) -> None:
    from pathloop.client.segmentation import write_ensemble

    settings, initial, foreground = gate_site(tmp_path)
    assert initial.weights_uri is not None
    with Store.open(settings) as store:
        folder = write_ensemble(forced_arrays(foreground, 0), initial.weights_uri,
                                model_dir(settings, "local-worse"))
        worse = store.add_model_version(name="local-worse", kind=MODEL_KIND, parent_id=initial.id,
                                        weights_uri=str(folder), held="trained; waiting")
        decision = gate_trained_version(settings, store, worse, actor="site-job")
        assert decision.outcome == "refused" and decision.held_out == 3
        assert current_model(store) == initial and refused_versions(store) == 1
