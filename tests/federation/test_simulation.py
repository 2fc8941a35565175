"""Flower's Simulation Runtime (Ray) with real sites: 3 MoNuSeg organs as virtual SuperNodes,
2 rounds of tiny nnU-Net ensembles through the same ServerApp logic and ClientApp handlers."""

from __future__ import annotations

from pathlib import Path

import pytest
from support.monuseg_sites import make_site, monuseg_cases, train_model

from pathloop.client.experiments.monuseg import by_organ, list_images
from pathloop.client.federation.simulation import run_simulated_federation
from pathloop.client.segmentation import export_model
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.usecases.models import MODEL_KIND
from pathloop.server.checkpoints import CheckpointStore
from pathloop.server.report import summarize
from pathloop.server.settings import ServerSettings

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

ORGANS = ("breast", "kidney", "prostate")


def test_two_simulated_rounds_close_the_loop_at_every_site(
        shared_data: Path, tmp_path: Path) -> None:
    groups = by_organ(list_images(shared_data / "nuclei" / "monuseg"))
    initial = export_model(train_model(monuseg_cases(groups["lung"][:2], "i"),
                                       tmp_path / "initial"), tmp_path / "shipped")
    configs = [make_site(tmp_path / organ, organ, groups[organ], initial) for organ in ORGANS]
    settings = ServerSettings.from_run_config({
        "checkpoint-dir": str(tmp_path / "checkpoints"), "initial-model": str(initial),
        "num-server-rounds": 2, "min-train-nodes": 3, "min-available-nodes": 3,
        "local-epochs": 1})

    result = run_simulated_federation(configs, settings)

    assert (result.outcome.start_version, result.outcome.final_version) == (0, 2)
    assert not result.outcome.rejected
    assert sorted(result.site_names.values()) == sorted(ORGANS)
    versions = CheckpointStore(tmp_path / "checkpoints").versions()
    assert [v.version for v in versions] == [0, 1, 2]
    for version in versions[1:]:
        assert sorted(c.node_id for c in version.contributions) == sorted(result.site_names)
    summary = summarize(tmp_path / "checkpoints", result.site_names)
    assert sorted(summary.dice) == [0, 1, 2]
    assert all(sorted(row) == sorted(ORGANS) for row in summary.dice.values())
    for config in configs:
        with Store.open(SiteSettings.from_file(config)) as store:
            current = store.latest_model_version(MODEL_KIND)
            assert current is not None and current.provenance["global_version"] == 2
