"""Whole server rounds against in-process sites: validation, lineage, resume, evaluations."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from flwr.app import Error, Message
from flwr.common.constant import SUPERLINK_NODE_ID
from support.flower import FakeGrid
from support.server_sites import PLANS, fake_site, initial_model, server_settings

from pathloop.server.checkpoints import CheckpointStore
from pathloop.server.contract import (
    PACKED,
    PROTOCOL_VERSION,
    ConfigKey,
    member_key,
    plans_digest,
)
from pathloop.server.errors import FederationError
from pathloop.server.federation import read_evaluations, run_federation
from pathloop.server.flower_project import app_config_defaults
from pathloop.server.settings import ServerSettings
from pathloop.server.strategy import to_numpy, to_record


def _nan(arrays: dict) -> None:  # type: ignore[type-arg]
    arrays[member_key(2, PACKED)][0] = np.nan


def test_two_rounds_aggregate_the_valid_sites_and_record_lineage(tmp_path: Path) -> None:
    initial_model(tmp_path / "initial")
    honest = {1: fake_site(0.01, 30), 2: fake_site(0.02, 10, dice=0.9)}
    bad = {
        3: fake_site(0.01, 10, corrupt=_nan),
        4: fake_site(0.01, 10, corrupt=lambda a: a.update(
            {member_key(0, PACKED): np.zeros(5, np.float32)})),
        5: fake_site(0.01, 10, corrupt=lambda a: a.update(
            {member_key(1, PACKED): a[member_key(1, PACKED)] * np.float32(1e4)})),
        6: lambda m: Message(Error(code=0, reason="out of memory"), reply_to=m),
        7: lambda m: None,  # dropped connection: never answers
    }
    grid = FakeGrid({**honest, **bad})  # type: ignore[dict-item]
    settings = server_settings(tmp_path, min_train_nodes=7, min_available_nodes=7)
    outcome = run_federation(grid, settings)  # type: ignore[arg-type]
    assert (outcome.start_version, outcome.final_version) == (0, 2)

    store = CheckpointStore(tmp_path / "checkpoints")
    versions = store.versions()
    assert [v.version for v in versions] == [0, 1, 2]
    assert [v.parent for v in versions] == [None, 0, 1]
    one = versions[1]
    assert sorted(c.node_id for c in one.contributions) == [1, 2]
    assert {c.node_id: c.examples for c in one.contributions} == {1: 30, 2: 10}
    reasons = {r["node_id"]: r["reason"] for r in one.rejected}
    assert set(reasons) == {3, 4, 5, 6}
    assert "NaN" in reasons[3] and "shape (5,)" in reasons[4]
    assert "changed by" in reasons[5] and "out of memory" in reasons[6]
    assert one.plans_sha256 == plans_digest(PLANS)

    # Version 1 is the patch-weighted mean of the two honest updates of version 0.
    v0, v1 = store.load(0), store.load(1)
    for name, array in v0.items():
        expected = array + (0.75 * 0.01 + 0.25 * 0.02) * np.sign(array)
        np.testing.assert_allclose(v1[name], expected, rtol=1e-5, atol=1e-6)

    # Every site got the contract's config: protocol, plans and their digest, the version.
    config = honest[1].seen[0]  # type: ignore[attr-defined]
    assert config[ConfigKey.PROTOCOL] == PROTOCOL_VERSION
    assert json.loads(config[ConfigKey.PLANS]) == PLANS
    assert config[ConfigKey.PLANS_SHA256] == plans_digest(PLANS)
    assert config[ConfigKey.GLOBAL_VERSION] == 0

    evaluations = read_evaluations(tmp_path / "checkpoints")
    dice = {(r["version"], r["node_id"]): r.get("dice") for r in evaluations}
    assert dice[(1, 2)] == 0.9 and dice[(2, 1)] == 0.7
    assert dice[(0, 2)] == 0.9  # the initial model is scored before the first round
    # Once, by every site that answers (node 7 never does).
    assert [r["version"] for r in evaluations].count(0) == 6


def _vanished(message: Message) -> Message:
    """What the SuperLink answers for a site that stopped sending heartbeats: an error
    reply from the SuperLink itself (node 1), tied to the message by ``reply_to``."""
    reply = Message(Error(code=5, reason="Error: Node Unavailable"), reply_to=message)
    reply.metadata.__dict__["_src_node_id"] = SUPERLINK_NODE_ID
    return reply


def test_a_vanished_site_is_recorded_under_its_own_node_id(tmp_path: Path) -> None:
    initial_model(tmp_path / "initial")
    grid = FakeGrid({7: fake_site(0.01, 10), 8: fake_site(0.02, 10), 9: _vanished})
    run_federation(grid, server_settings(tmp_path, num_server_rounds=1))  # type: ignore[arg-type]
    (version,) = CheckpointStore(tmp_path / "checkpoints").versions()[1:]
    assert [r["node_id"] for r in version.rejected] == [9]
    assert "Node Unavailable" in version.rejected[0]["reason"]
    failed = [r for r in read_evaluations(tmp_path / "checkpoints") if "error" in r]
    assert [(r["version"], r["node_id"]) for r in failed] == [(0, 9), (1, 9)]


def test_a_restarted_server_resumes_from_the_last_version(tmp_path: Path) -> None:
    initial_model(tmp_path / "initial")
    sites = {n: fake_site(0.01, 10) for n in (1, 2, 3)}
    run_federation(FakeGrid(sites), server_settings(tmp_path))  # type: ignore[arg-type, dict-item]
    outcome = run_federation(FakeGrid(sites),  # type: ignore[arg-type, dict-item]
                             server_settings(tmp_path, num_server_rounds=1))
    assert (outcome.start_version, outcome.final_version) == (2, 3)
    latest = CheckpointStore(tmp_path / "checkpoints").latest()
    assert latest is not None and latest.parent == 2
    assert sites[1].seen[-2][ConfigKey.GLOBAL_VERSION] == 2  # type: ignore[attr-defined]


def test_a_round_without_any_valid_update_keeps_the_global_model(tmp_path: Path) -> None:
    initial_model(tmp_path / "initial")
    sites = {n: fake_site(0.01, 10, corrupt=_nan) for n in (1, 2, 3)}
    outcome = run_federation(FakeGrid(sites), server_settings(tmp_path))  # type: ignore[arg-type, dict-item]
    assert outcome.final_version == 0
    assert len(outcome.rejected) == 6  # 3 sites × 2 rounds
    assert [v.version for v in CheckpointStore(tmp_path / "checkpoints").versions()] == [0]


def test_the_federations_plans_cannot_change(tmp_path: Path) -> None:
    initial_model(tmp_path / "initial")
    sites = {n: fake_site(0.01, 10) for n in (1, 2, 3)}
    run_federation(FakeGrid(sites), server_settings(tmp_path, num_server_rounds=1))  # type: ignore[arg-type, dict-item]
    initial_model(tmp_path / "other", {**PLANS, "plans_name": "bigger"})
    with pytest.raises(FederationError, match="differs from the federation's plans"):
        run_federation(FakeGrid(sites),  # type: ignore[arg-type, dict-item]
                       server_settings(tmp_path, initial_model=str(tmp_path / "other")))


def test_settings_refuse_nonsense() -> None:
    with pytest.raises(FederationError, match="run config: checkpoint-dir: Field required"):
        ServerSettings.from_run_config({})
    with pytest.raises(FederationError, match=r"checkpoint-dir: .*the folder of the global"):
        ServerSettings.from_run_config({"checkpoint-dir": ""})
    with pytest.raises(FederationError,
                       match="run config: strategy: Input should be 'fedavg' or 'fedprox'"):
        ServerSettings.from_run_config({"checkpoint-dir": "x", "strategy": "fedsgd"})
    with pytest.raises(FederationError, match="round-timeout: Input should be greater than 0"):
        ServerSettings.from_run_config({"checkpoint-dir": "x", "round-timeout": 0})
    with pytest.raises(FederationError, match="run config: rounds: Extra inputs are not"):
        ServerSettings.from_run_config({"checkpoint-dir": "x", "rounds": 3})


def test_settings_read_the_declared_defaults_and_record_themselves() -> None:
    declared = {**app_config_defaults(), "checkpoint-dir": "~/checkpoints"}
    settings = ServerSettings.from_run_config(declared)
    assert settings.initial_model is None  # "" is the app's way of leaving it unset
    assert settings.checkpoint_dir == Path("~/checkpoints").expanduser()
    assert settings.to_json() == {**declared, "initial-model": None,
                                  "checkpoint-dir": str(settings.checkpoint_dir)}


def test_message_arrays_are_viewed_without_pickle_and_checked() -> None:
    import io

    from flwr.app import Array, ArrayRecord

    good = np.arange(12, dtype=np.float32).reshape(3, 4)
    viewed = to_numpy(to_record({"fold0/w": good}))["fold0/w"]
    np.testing.assert_array_equal(viewed, good)
    assert not viewed.flags.writeable  # a view of the message, not a copy

    def record(data: bytes, shape: tuple[int, ...] = (3, 4)) -> ArrayRecord:
        return ArrayRecord({"fold0/w": Array(dtype="float32", shape=shape,
                                             stype="numpy.ndarray", data=data)})

    whole = to_record({"fold0/w": good})["fold0/w"].data
    with pytest.raises(ValueError, match="data bytes for shape"):
        to_numpy(record(whole[:-4]))
    pickled = io.BytesIO()
    np.save(pickled, np.array([{"x": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(ValueError, match="only numeric C-order arrays"):
        to_numpy(record(pickled.getvalue(), (1,)))
    with pytest.raises(ValueError, match=r"not a \.npy array"):
        to_numpy(record(b"garbage" * 10))


def test_fedprox_sends_mu_and_records_its_name(tmp_path: Path) -> None:
    initial_model(tmp_path / "initial")
    sites = {n: fake_site(0.01, 10) for n in (1, 2, 3)}
    run_federation(FakeGrid(sites),  # type: ignore[arg-type, dict-item]
                   server_settings(tmp_path, strategy="fedprox", proximal_mu=0.1,
                             num_server_rounds=1))
    (config,) = [c for c in sites[1].seen if ConfigKey.LOCAL_EPOCHS in c]  # type: ignore[attr-defined]
    assert config[ConfigKey.PROXIMAL_MU] == 0.1
    assert config[ConfigKey.PLANS_SHA256] == plans_digest(PLANS)
    latest = CheckpointStore(tmp_path / "checkpoints").latest()
    assert latest is not None and latest.strategy == "fedprox" and latest.version == 1
