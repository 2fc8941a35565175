"""The Flower deployment on loopback: a SuperLink and 3 SuperNodes as separate processes,
TLS and SuperNode authentication on, real sites (tiny nnU-Net on MoNuSeg organs).

One test, in steps on one deployment (each step builds on the state the one before left,
so they are not separate tests that would depend on pytest's order): an unregistered key is
refused; 2 rounds make 2 global versions with lineage; a run whose app bundle carries its own
ClientApp and module is refused by every site and its code never runs; a SuperNode killed
mid-round leaves a round that completes with the others; a SuperLink killed mid-run and
restarted on its database lets the next run resume from the last checkpoint.
"""

from __future__ import annotations

import time
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psutil
import pytest
import tomli_w
from support.monuseg_sites import make_site, monuseg_cases, train_model
from typer.testing import CliRunner

from pathloop.client.cli.app import app as pathloop_cli
from pathloop.client.experiments.monuseg import by_organ, list_images
from pathloop.client.segmentation import export_model
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.usecases.models import MODEL_KIND
from pathloop.server.checkpoints import CheckpointStore
from pathloop.server.contract import SERVER_APP
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


def _sites_listen_on_loopback_only(deployment: dict[str, Any]) -> None:
    """Every socket a site's processes listen on (the SuperNode's Runtime API) is 127.0.0.1."""
    federation: LoopbackFederation = deployment["federation"]
    listening = []
    for name in deployment["configs"]:
        process = psutil.Process(federation.processes[name].popen.pid)
        for one in (process, *federation.children(name)):
            listening += [(name, c.laddr) for c in one.net_connections("inet")
                          if c.status == psutil.CONN_LISTEN]
    assert {name for name, _ in listening} == set(deployment["configs"])
    assert all(address.ip == "127.0.0.1" for _, address in listening), listening


def _two_rounds_over_tls_make_checkpoints_with_lineage(deployment: dict[str, Any]) -> None:
    federation: LoopbackFederation = deployment["federation"]
    run = _run(deployment, **{"num-server-rounds": 2, "min-train-nodes": 3,
                              "min-available-nodes": 3, "round-timeout": 600.0})
    _wait_for_clientapp(federation, "site-breast", timeout=300)
    _flower_runs_with_telemetry_off(deployment)  # ClientApps and the ServerApp running too
    _sites_listen_on_loopback_only(deployment)
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


def _foreign_app(folder: Path, genuine: Path, marker: Path) -> Path:
    """pathloop's Flower App with pathloop's ServerApp (the central side runs our code) but a
    ClientApp of its own: ``evil.py``, whose import writes ``marker``."""
    project = tomllib.loads((genuine / "pyproject.toml").read_text())
    project["tool"]["flwr"]["app"]["components"] = {"serverapp": SERVER_APP,
                                                    "clientapp": "evil:app"}
    folder.mkdir()
    (folder / "pyproject.toml").write_text(tomli_w.dumps(project))
    (folder / "README.md").write_text((genuine / "README.md").read_text())
    (folder / "evil.py").write_text(
        "from pathlib import Path\nfrom flwr.clientapp import ClientApp\n"
        f"Path({str(marker)!r}).write_text('foreign code ran at a site')\n"
        "app = ClientApp()\n")
    return folder


def _a_run_with_a_foreign_clientapp_is_refused_by_every_site(
        deployment: dict[str, Any], tmp_path: Path) -> None:
    federation: LoopbackFederation = deployment["federation"]
    marker = tmp_path / "foreign-code-ran"
    foreign = _foreign_app(tmp_path / "foreign-app", deployment["app"], marker)
    checkpoints = tmp_path / "foreign-checkpoints"  # its ServerApp records what sites said
    run = federation.cli.start_run(foreign, {
        "checkpoint-dir": str(checkpoints), "initial-model": str(deployment["initial"]),
        "num-server-rounds": 1, "min-train-nodes": 3, "min-available-nodes": 3,
        "round-timeout": 300.0, "local-epochs": 1})
    federation.cli.wait(run, RUN_TIMEOUT)
    assert not marker.exists(), "a site imported the foreign bundle's code"
    # The ServerApp (pathloop's) asked every site to score version 0, before and after the
    # round: every site refused every time, and the round's training got no update.
    refusals = read_evaluations(checkpoints)
    assert {r["node_id"] for r in refusals} == set(deployment["nodes"].values())
    assert len(refusals) == 2 * len(deployment["nodes"])
    for row in refusals:
        assert "dice" not in row and row["error"].startswith(
            "the site runs only pathloop's own ClientApp: app bundle: files"), row
        assert "evil.py" in row["error"]
    assert [v.version for v in CheckpointStore(checkpoints).versions()] == [0]  # no update
    for name in deployment["configs"]:  # each site said why, in its own log
        log = (federation.logs / f"{name}.log").read_text()
        assert f"run {run} refused: app bundle" in log, name
    assert all(federation.processes[name].alive() for name in deployment["configs"])


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


def test_the_deployment_step_by_step(deployment: dict[str, Any], tmp_path: Path) -> None:
    _a_supernode_with_an_unregistered_key_is_refused(deployment)
    _two_rounds_over_tls_make_checkpoints_with_lineage(deployment)
    _a_run_with_a_foreign_clientapp_is_refused_by_every_site(deployment, tmp_path)
    _a_supernode_killed_mid_round_leaves_the_round_to_the_others(deployment)
    _a_restarted_superlink_lets_the_next_run_resume(deployment)
