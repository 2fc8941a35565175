"""The ClientApp refuses a round outside the site's limits and reports the gate's refusals."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
from flwr.app import Array, ArrayRecord, ConfigRecord, Context, Message, RecordDict
from support.flower import FakeGrid
from support.gate_site import Arrays, forced_arrays, gate_site, round_config

from pathloop.client.federation import client_app
from pathloop.client.settings import SiteSettings
from pathloop.client.store import ModelVersionRecord, Store
from pathloop.client.usecases.models import MODEL_KIND
from pathloop.server.contract import (
    ARRAYS,
    CONFIG,
    EVALUATE,
    METRICS,
    TRAIN,
    ConfigKey,
    MetricKey,
    PackingLayout,
)


def _site_file(settings: SiteSettings, root: Path) -> Path:
    """The site's TOML file, as its SuperNode names it."""
    fed = settings.federation
    path = root / "site.toml"
    path.write_text(
        f'site-id = "{settings.site_id}"\ndata-dir = "{settings.data_dir}"\n\n[federation]\n'
        f'training-images = "{fed.training_images}"\ntraining-masks = "{fed.training_masks}"\n'
        f'held-out-images = "{fed.held_out_images}"\nheld-out-masks = "{fed.held_out_masks}"\n'
        f"mpp = {fed.mpp}\nlabels = {json.dumps(list(fed.labels))}\n")
    return path


def _send(kind: str, site_file: Path, config: dict[str, object], arrays: Arrays) -> Message:
    FakeGrid({})  # sets the task identity messages need
    layout = PackingLayout.of(arrays)
    packed = layout.pack(arrays)
    content = RecordDict({
        ARRAYS: ArrayRecord({k: Array(v) for k, v in packed.items()}),
        CONFIG: ConfigRecord({**config, ConfigKey.LAYOUT: layout.to_json()})})  # type: ignore[dict-item]
    context = Context(run_id=1, node_id=1, node_config={"site-config": str(site_file)},
                      state=RecordDict(), run_config={})
    handler = client_app.train if kind == TRAIN else client_app.evaluate
    return handler(Message(content, dst_node_id=1, message_type=kind), context)


@pytest.fixture
def site(tmp_path: Path) -> tuple[SiteSettings, Path, ModelVersionRecord, Arrays]:
    settings, initial, foreground = gate_site(tmp_path)
    return settings, _site_file(settings, tmp_path), initial, foreground


@pytest.mark.parametrize(("key", "value"), [(ConfigKey.LEARNING_RATE, math.nan),
                                            (ConfigKey.LOCAL_EPOCHS, -2),
                                            (ConfigKey.PROXIMAL_MU, 1e12)])
def test_a_round_outside_the_limits_is_refused_before_anything_is_done(
        site: tuple[SiteSettings, Path, ModelVersionRecord, Arrays], key: str, value: object,
        caplog: pytest.LogCaptureFixture) -> None:
    settings, site_file, initial, foreground = site
    config = round_config(settings, initial, 1, **{key: value})
    reply = _send(TRAIN, site_file, config, foreground)
    assert reply.has_error()
    assert reply.error.reason == "RoundLimitError at the site (see its log)"
    assert f"'{key}' = {value!r} refused" in caplog.text  # in full in the site's log
    with Store.open(settings) as store:
        assert store.latest_model_version(MODEL_KIND) == initial  # nothing stored, trained


def test_a_worse_global_version_is_refused_and_counted_in_the_reply(
        site: tuple[SiteSettings, Path, ModelVersionRecord, Arrays]) -> None:
    settings, site_file, initial, foreground = site
    reply = _send(EVALUATE, site_file, round_config(settings, initial, 1),
                  forced_arrays(foreground, 0))
    assert not reply.has_error()
    metrics = dict(reply.content.metric_records[METRICS])
    assert metrics[MetricKey.ADOPTED] == 0.0 and metrics[MetricKey.REFUSED] == 1.0
    assert metrics[MetricKey.DICE] == 0.0
    with Store.open(settings) as store:
        assert store.current_model_version(MODEL_KIND) == initial
        newest = store.latest_model_version(MODEL_KIND)
        assert newest is not None and newest.name.startswith("global-v0001-")
