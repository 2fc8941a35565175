"""Federated rounds with real sites in one process: the server's run_federation driving the
sites' ClientApp handlers (tiny nnU-Net on MoNuSeg tiles), every site message inspected."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import tifffile
from fake_grid import FakeGrid
from flwr.app import Context, Message, RecordDict
from PIL import Image

from pathloop.client.experiments.monuseg import by_organ, list_images, read_nucleus_mask
from pathloop.client.federated import import_model
from pathloop.client.federation import client_app
from pathloop.client.loop import MODEL_KIND
from pathloop.client.segmentation import (
    TINY,
    Case,
    SegmentationTask,
    export_dataset,
    export_model,
    train_ensemble,
)
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.server.checkpoints import CheckpointStore
from pathloop.server.contract import ARRAYS, EVALUATE, METRICS, QUERY, SITE_METRICS, TRAIN
from pathloop.server.federation import read_evaluations, run_federation
from pathloop.server.settings import ServerSettings

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

NUCLEI = SegmentationTask("nuclei", {"background": 0, "nucleus": 1})
SHORT = TINY.with_overrides(n_folds=2, num_epochs=1, iterations_per_epoch=3,
                            val_iterations_per_epoch=1)
SITES = {1: "breast", 2: "kidney", 3: "prostate"}


def _cases(images: list, prefix: str) -> list[Case]:  # type: ignore[type-arg]
    cases = []
    for image in images:
        rgb = tifffile.imread(image.image_path)[..., :3]
        mask = read_nucleus_mask(image, rgb.shape[:2])
        rgb = np.asarray(Image.fromarray(rgb).resize((500, 500), Image.Resampling.BILINEAR))
        mask = np.asarray(Image.fromarray(mask).resize((500, 500), Image.Resampling.NEAREST))
        for x in (0, 244):
            cases.append(Case(f"{prefix}{image.stem[5:12]}x{x}",
                              np.ascontiguousarray(rgb[:256, x:x + 256]),
                              np.ascontiguousarray(mask[:256, x:x + 256])))
    return cases


def _write(cases: list[Case], folder: Path) -> tuple[Path, Path]:
    (folder / "images").mkdir(parents=True)
    (folder / "masks").mkdir()
    for case in cases:
        Image.fromarray(case.image).save(folder / "images" / f"{case.name}.png")
        Image.fromarray(case.mask).save(folder / "masks" / f"{case.name}.png")
    return folder / "images", folder / "masks"


def _model(cases: list[Case], root: Path, profile=SHORT) -> Path:  # type: ignore[no-untyped-def]
    dataset = export_dataset(cases, root / "dataset", NUCLEI, mpp=0.5)
    train_ensemble(dataset, root / "model", profile=profile)
    return root / "model"


def _site(root: Path, organ: str, images: list, initial: Path) -> Path:  # type: ignore[type-arg]
    train_images, train_masks = _write(_cases(images[:2], "t"), root / "train")
    held_images, held_masks = _write(_cases(images[2:3], "h"), root / "held")
    config = root / "site.toml"
    config.write_text(
        f'site-id = "{organ}"\ndata-dir = "data"\n[federation]\n'
        f'training-images = "{train_images}"\ntraining-masks = "{train_masks}"\n'
        f'held-out-images = "{held_images}"\nheld-out-masks = "{held_masks}"\n'
        'mpp = 0.5\nlabels = ["background", "nucleus"]\n')
    settings = SiteSettings.from_file(config)
    with Store.open(settings) as store:
        import_model(settings, store, initial, "initial")
    return config


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
    initial = export_model(_model(_cases(groups["lung"][:2], "i"), root / "initial"),
                           root / "shipped")
    configs = {node: _site(root / organ, organ, groups[organ], initial)
               for node, organ in SITES.items()}
    # A fourth site whose model was planned with other patches: it must refuse to train.
    other = _model(_cases(groups["bladder"][:2], "o"), root / "other",
                   SHORT.with_overrides(patch_size=(64, 64)))
    configs[4] = _site(root / "colon", "colon", groups["colon"],
                       export_model(other, root / "other-shipped"))
    log: list[tuple[str, Message]] = []
    grid = FakeGrid({node: _node(config, node, log) for node, config in configs.items()})
    settings = ServerSettings.from_run_config({
        "checkpoint-dir": str(root / "checkpoints"), "initial-model": str(initial),
        "num-server-rounds": 2, "min-train-nodes": 4, "min-available-nodes": 4,
        "local-epochs": 1})
    outcome = run_federation(grid, settings)  # type: ignore[arg-type]
    return {"root": root, "outcome": outcome, "log": log, "configs": configs,
            "initial": initial}


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
        (1, 1), (1, 2), (1, 3), (2, 1), (2, 2), (2, 3)]
    assert all(0.0 <= r["dice"] <= 1.0 and r["num-held-out"] == 2 for r in evaluations)


def test_the_loop_closes_at_each_site(federation: dict) -> None:  # type: ignore[type-arg]
    for node in SITES:
        settings = SiteSettings.from_file(federation["configs"][node])
        with Store.open(settings) as store:
            current = store.latest_model_version(MODEL_KIND)
            assert current is not None and current.name.startswith("global-v0002-")
            assert current.provenance["global_version"] == 2


def test_sites_send_only_expected_arrays_and_numbers(federation: dict) -> None:  # type: ignore[type-arg]
    with np.load(federation["initial"] / "arrays.npz") as data:
        expected = {name: data[name].shape for name in data.files}
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


def test_query_reports_counts_only(federation: dict) -> None:  # type: ignore[type-arg]
    log: list[tuple[str, Message]] = []
    node = _node(federation["configs"][1], 1, log)
    grid = FakeGrid({1: node})
    message = Message(RecordDict(), dst_node_id=1, message_type=QUERY)
    (reply,) = grid.send_and_receive([message])
    metrics = dict(reply.content.metric_records[METRICS])
    assert metrics == {"protocol-version": 1.0, "num-slides": 0.0, "num-corrections": 0.0,
                       "num-pending": 0.0}
    assert json.dumps(metrics)  # plain numbers
