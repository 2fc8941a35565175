"""Federated rounds with real sites in one process: the server's run_federation driving the
sites' ClientApp handlers (tiny nnU-Net on MoNuSeg tiles), every site message inspected."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Context, Message, RecordDict
from support.flower import FakeGrid
from support.monuseg_sites import SHORT, make_site, monuseg_cases, train_model

from pathloop.client.experiments.monuseg import by_organ, list_images
from pathloop.client.federation import client_app
from pathloop.client.segmentation import export_model
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.usecases.models import MODEL_KIND, import_model
from pathloop.server.checkpoints import CheckpointStore
from pathloop.server.contract import (
    ARRAYS,
    EVALUATE,
    METRICS,
    PACKED,
    PROTOCOL_VERSION,
    QUERY,
    SITE_METRICS,
    TRAIN,
    PackingLayout,
    member_key,
)
from pathloop.server.federation import read_evaluations, run_federation
from pathloop.server.settings import ServerSettings

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

SITES = {1: "breast", 2: "kidney", 3: "prostate"}


def _node(config: Path, node_id: int, log: list[tuple[str, Message]]
          ) -> Callable[[Message], Message]:
    context = Context(run_id=1, node_id=node_id, node_config={"site-config": str(config)},
                      state=RecordDict(), run_config={})
    handlers = {TRAIN: client_app.train, EVALUATE: client_app.evaluate,
                QUERY: client_app.query}

    def answer(message: Message) -> Message:
        reply = handlers[message.metadata.message_type](message, context)
        log.append((message.metadata.message_type, reply))
        return reply

    return answer


@pytest.fixture(scope="module")
def federation(shared_data: Path, tmp_path_factory: pytest.TempPathFactory) -> dict:  # type: ignore[type-arg]
    root = tmp_path_factory.mktemp("federation")
    groups = by_organ(list_images(shared_data / "nuclei" / "monuseg"))
    baseline = train_model(monuseg_cases(groups["lung"][:2], "i"), root / "initial")
    initial = export_model(baseline, root / "shipped")
    configs = {node: make_site(root / organ, organ, groups[organ], initial)
               for node, organ in SITES.items()}
    # A fourth site whose model was planned with other patches: it must refuse to train.
    other = train_model(monuseg_cases(groups["bladder"][:2], "o"), root / "other",
                        SHORT.with_overrides(patch_size=(64, 64)))
    configs[4] = make_site(root / "colon", "colon", groups["colon"],
                           export_model(other, root / "other-shipped"))
    log: list[tuple[str, Message]] = []
    grid = FakeGrid({node: _node(config, node, log) for node, config in configs.items()})
    settings = ServerSettings.from_run_config({
        "checkpoint-dir": str(root / "checkpoints"), "initial-model": str(initial),
        "num-server-rounds": 2, "min-train-nodes": 4, "min-available-nodes": 4,
        "local-epochs": 1})
    outcome = run_federation(grid, settings)  # type: ignore[arg-type]
    return {"root": root, "outcome": outcome, "log": log, "configs": configs,
            "initial": initial, "sent": grid.sent}


def test_two_rounds_make_two_global_versions_with_lineage(federation: dict) -> None:  # type: ignore[type-arg]
    store = CheckpointStore(federation["root"] / "checkpoints")
    versions = store.versions()
    assert [v.version for v in versions] == [0, 1, 2]
    for version in versions[1:]:
        assert sorted(c.node_id for c in version.contributions) == [1, 2, 3]
        assert all(c.examples == 4 for c in version.contributions)  # 2 images × 2 tiles
        assert [r["node_id"] for r in version.rejected] == [4]
        assert "ProtocolError" in version.rejected[0]["reason"]
    evaluations = [r for r in read_evaluations(federation["root"] / "checkpoints")
                   if "dice" in r]
    assert sorted((r["version"], r["node_id"]) for r in evaluations) == [
        (v, n) for v in (0, 1, 2) for n in (1, 2, 3)]  # the initial model scored first
    assert all(0.0 <= r["dice"] <= 1.0 and r["num-held-out"] == 2 for r in evaluations)
    assert all(r["adopted"] in (0.0, 1.0) and r["num-refused"] >= 0 for r in evaluations)


def test_the_loop_closes_at_each_site(federation: dict) -> None:  # type: ignore[type-arg]
    for node in SITES:
        settings = SiteSettings.from_file(federation["configs"][node])
        with Store.open(settings) as store:
            current = store.latest_model_version(MODEL_KIND)
            assert current is not None and current.name.startswith("global-v0002-")
            assert current.provenance["global_version"] == 2


def test_sites_send_only_expected_arrays_and_numbers(federation: dict) -> None:  # type: ignore[type-arg]
    with np.load(federation["initial"] / "arrays.npz") as data:
        layout = PackingLayout.of({name: data[name] for name in data.files})
    # One float32 vector per member: the parameters packed in the round's layout.
    expected = {member_key(fold, PACKED): (layout.size,) for fold in layout.folds}
    assert len(expected) == 2 and len(layout.parameters) > 50
    replies = [(kind, reply) for kind, reply in federation["log"] if not reply.has_error()]
    assert {kind for kind, _ in replies} == {TRAIN, EVALUATE}
    for kind, reply in replies:
        content = reply.content
        assert set(content.keys()) <= {ARRAYS, METRICS}
        assert not content.config_records
        metrics = dict(content.metric_records[METRICS])
        assert set(metrics) <= SITE_METRICS
        assert all(isinstance(v, int | float) for v in metrics.values())
        if kind == TRAIN:
            arrays = content.array_records[ARRAYS]
            assert {k: tuple(a.shape) for k, a in arrays.items()} == expected
            assert {a.dtype for a in arrays.values()} == {"float32"}
        else:
            assert ARRAYS not in content
    errors = [reply for _, reply in federation["log"] if reply.has_error()]
    assert errors and all("/" not in reply.error.reason for reply in errors)  # no paths


def _refused(config: Path) -> int:
    """Versions the site's gate refused, from its store."""
    with Store.open(SiteSettings.from_file(config)) as store:
        return store.count_adoptions(MODEL_KIND, "refused")


def test_query_reports_counts_only(federation: dict) -> None:  # type: ignore[type-arg]
    log: list[tuple[str, Message]] = []
    node = _node(federation["configs"][1], 1, log)
    grid = FakeGrid({1: node})
    message = Message(RecordDict(), dst_node_id=1, message_type=QUERY)
    (reply,) = grid.send_and_receive([message])
    metrics = dict(reply.content.metric_records[METRICS])
    assert metrics == {"protocol-version": float(PROTOCOL_VERSION), "num-slides": 0.0,
                       "num-corrections": 0.0, "num-pending": 0.0,
                       "num-refused": float(_refused(federation["configs"][1]))}
    assert json.dumps(metrics)  # plain numbers


def test_a_seeded_site_repeats_its_round_and_an_unseeded_one_does_not(
        federation: dict, tmp_path: Path) -> None:  # type: ignore[type-arg]
    """Site 1's first round again, twice, at a copy of the site with ``seed`` set: the same
    weights both times, unlike the unseeded reply the federation got."""
    request = next(m for m in federation["sent"] if m.metadata.message_type == TRAIN
                   and m.metadata.dst_node_id == 1)
    unseeded = next(reply for kind, reply in federation["log"]
                    if kind == TRAIN and reply.metadata.reply_to_message_id
                    == request.metadata.message_id)
    config = tmp_path / "site.toml"  # data-dir "data": a fresh store beside it
    config.write_text(federation["configs"][1].read_text() + "seed = 7\n")
    settings = SiteSettings.from_file(config)
    assert settings.federation.seed == 7
    with Store.open(settings) as store:
        import_model(settings, store, federation["initial"], "initial")
    log: list[tuple[str, Message]] = []
    node = _node(config, 1, log)
    first, second = node(request), node(request)

    def packed(reply: Message) -> dict[str, np.ndarray]:
        assert not reply.has_error()
        return {k: a.numpy() for k, a in reply.content.array_records[ARRAYS].items()}

    a, b, c = packed(first), packed(second), packed(unseeded)
    assert a.keys() == b.keys() == c.keys()
    # Seeded: equal up to the order threads add partial sums in (see TrainingProfile.seed).
    assert max(float(np.abs(a[k] - b[k]).max()) for k in a) < 1e-4
    assert max(float(np.abs(a[k] - c[k]).max()) for k in a) > 1e-3
