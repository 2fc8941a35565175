"""The Flower deployment on loopback: a SuperLink and 3 SuperNodes as separate processes,
TLS and SuperNode authentication on, real sites (tiny nnU-Net on MoNuSeg organs).

One test, in steps on one deployment (each step builds on the state the one before left,
so they are not separate tests that would depend on pytest's order): an unregistered key is
refused; 2 rounds make 2 global versions with lineage; a SuperNode killed mid-round leaves a
round that completes with the others; a SuperLink killed mid-run and restarted on its
database lets the next run resume from the last checkpoint.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
from support.monuseg_sites import make_site, monuseg_cases, train_model
from typer.testing import CliRunner

from pathloop.client.cli.app import app as pathloop_cli
from pathloop.client.experiments.monuseg import by_organ, list_images
from pathloop.client.segmentation import export_model
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.usecases.models import MODEL_KIND
from pathloop.server.checkpoints import CheckpointStore
from pathloop.server.federation import read_evaluations
from pathloop.server.flower_project import write_flower_app
from pathloop.server.loopback import LoopbackFederation, threads_per_node

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

SITES = {"site-breast": "breast", "site-kidney": "kidney", "site-prostate": "prostate"}
COMPLETED = "finished:completed"
RUN_TIMEOUT = 1200.0


@pytest.fixture
def deployment(shared_data: Path, tmp_path: Path) -> Iterator[dict[str, Any]]:
    root = tmp_path
    groups = by_organ(list_images(shared_data / "nuclei" / "monuseg"))
    initial = export_model(train_model(monuseg_cases(groups["lung"][:2], "i"), root / "initial"),
                           root / "shipped")
    configs = {name: make_site(root / organ, organ, groups[organ], initial)
               for name, organ in SITES.items()}
    with LoopbackFederation(root / "central") as federation:
        federation.start_superlink()
        nodes = {name: federation.register(name) for name in configs}
        for name, config in configs.items():
            federation.start_supernode(name, config, threads_per_node(len(configs)))
        federation.wait_online(len(configs))
        yield {"federation": federation, "nodes": nodes, "configs": configs,
               "initial": initial, "app": write_flower_app(root / "app"),
               "checkpoints": root / "central" / "checkpoints"}


def _run(deployment: dict[str, Any], **config: Any) -> int:
    federation: LoopbackFederation = deployment["federation"]
    run_config = {"checkpoint-dir": str(deployment["checkpoints"]),
                  "initial-model": str(deployment["initial"]), "local-epochs": 1, **config}
    return federation.cli.start_run(deployment["app"], run_config)


def _versions(deployment: dict[str, Any]) -> list[Any]:
    return CheckpointStore(deployment["checkpoints"]).versions()


def _wait_for_clientapp(federation: LoopbackFederation, name: str, timeout: float) -> None:
    """Until SuperNode ``name`` runs a ClientApp (a round's message reached it)."""
    deadline = time.monotonic() + timeout
    while not federation.clientapps(name):
        assert time.monotonic() < deadline, f"{name} never started a ClientApp"
        time.sleep(0.5)


def _a_supernode_with_an_unregistered_key_is_refused(deployment: dict[str, Any]) -> None:
    federation: LoopbackFederation = deployment["federation"]
    federation.start_supernode("intruder", deployment["configs"]["site-breast"])
    code = federation.exit_code("intruder", timeout=90)
    assert code is not None and code != 0, "the SuperLink let an unregistered SuperNode in"
    assert "Failed to activate" in (federation.logs / "intruder.log").read_text()
    assert len(federation.wait_online(3)) == 3  # the registered ones are unaffected


def _flower_runs_with_telemetry_off(deployment: dict[str, Any]) -> None:
    """The SuperLink, every SuperNode and whatever they started (a ServerApp, ClientApps)."""
    federation: LoopbackFederation = deployment["federation"]
    checked = 0
    for name, process in federation.processes.items():
        if not process.alive():
            continue  # the refused intruder
        for one in (psutil.Process(process.popen.pid), *federation.children(name)):
            assert one.environ().get("FLWR_TELEMETRY_ENABLED") == "0", (name, one.cmdline())
            checked += 1
    assert checked >= 1 + len(deployment["configs"])


def _two_rounds_over_tls_make_checkpoints_with_lineage(deployment: dict[str, Any]) -> None:
    federation: LoopbackFederation = deployment["federation"]
    run = _run(deployment, **{"num-server-rounds": 2, "min-train-nodes": 3,
                              "min-available-nodes": 3, "round-timeout": 600.0})
    _wait_for_clientapp(federation, "site-breast", timeout=300)
    _flower_runs_with_telemetry_off(deployment)  # ClientApps and the ServerApp running too
    assert federation.cli.wait(run, RUN_TIMEOUT) == COMPLETED
    versions = _versions(deployment)
    assert [v.version for v in versions] == [0, 1, 2]
    expected = sorted(deployment["nodes"].values())
    for version in versions[1:]:
        assert version.parent == version.version - 1
        assert sorted(c.node_id for c in version.contributions) == expected
        assert all(c.examples == 4 and c.corrections == 0 for c in version.contributions)
        assert not version.rejected
    scored = [r for r in read_evaluations(deployment["checkpoints"]) if "dice" in r]
    assert sorted((r["version"], r["node_id"]) for r in scored) == sorted(
        (v, n) for v in (0, 1, 2) for n in expected)
    for config in deployment["configs"].values():  # the loop closes at every site
        with Store.open(SiteSettings.from_file(config)) as store:
            current = store.latest_model_version(MODEL_KIND)
            assert current is not None and current.provenance["global_version"] == 2


def _a_supernode_killed_mid_round_leaves_the_round_to_the_others(
        deployment: dict[str, Any]) -> None:
    federation: LoopbackFederation = deployment["federation"]
    run = _run(deployment, **{"num-server-rounds": 2, "min-train-nodes": 2,
                              "min-available-nodes": 2, "round-timeout": 150.0})
    _wait_for_clientapp(federation, "site-prostate", timeout=300)
    federation.kill("site-prostate")
    assert federation.cli.wait(run, RUN_TIMEOUT) == COMPLETED
    versions = _versions(deployment)
    assert [v.version for v in versions] == [0, 1, 2, 3, 4]
    survivors = sorted(deployment["nodes"][n] for n in ("site-breast", "site-kidney"))
    for version in versions[3:]:
        assert sorted(c.node_id for c in version.contributions) == survivors
        # The SuperLink answers for the vanished node; lineage names that node, not itself.
        assert all(r["node_id"] == deployment["nodes"]["site-prostate"]
                   for r in version.rejected)


def _a_restarted_superlink_lets_the_next_run_resume(deployment: dict[str, Any]) -> None:
    federation: LoopbackFederation = deployment["federation"]
    before = _versions(deployment)[-1].version
    run = _run(deployment, **{"num-server-rounds": 3, "min-train-nodes": 2,
                              "min-available-nodes": 2, "round-timeout": 150.0})
    _wait_for_clientapp(federation, "site-breast", timeout=300)
    federation.kill("superlink")  # with its ServerApp, mid-round
    assert federation.processes["site-breast"].alive()
    federation.start_superlink()  # same database: registrations and runs are kept
    assert federation.cli.run_status(run) != COMPLETED
    federation.wait_online(2)
    # The central team's command this time: it resumes without an initial model.
    resumed = CliRunner().invoke(pathloop_cli, [
        "server", "run", str(federation.root), "--rounds", "1", "--min-sites", "2",
        "--round-timeout", "150", "--local-epochs", "1"])
    assert resumed.exit_code == 0, resumed.output
    assert COMPLETED in resumed.output
    versions = _versions(deployment)  # every version reads back whole (digest checked)
    store = CheckpointStore(deployment["checkpoints"])
    for version in versions:
        store.load(version.version)
    assert [v.version for v in versions] == list(range(len(versions)))
    # The killed run died in its first round: it lost that round and nothing else.
    assert versions[-1].version == before + 1 and versions[-1].parent == before
    status = CliRunner().invoke(pathloop_cli, ["server", "status", str(federation.root)])
    assert status.exit_code == 0, status.output
    assert "site-breast, site-kidney" in status.output and "online" in status.output


def test_the_deployment_step_by_step(deployment: dict[str, Any]) -> None:
    _a_supernode_with_an_unregistered_key_is_refused(deployment)
    _two_rounds_over_tls_make_checkpoints_with_lineage(deployment)
    _a_supernode_killed_mid_round_leaves_the_round_to_the_others(deployment)
    _a_restarted_superlink_lets_the_next_run_resume(deployment)
