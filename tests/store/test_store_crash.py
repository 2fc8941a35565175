"""The issue's crash test: SIGKILL a writing process mid-save many times, then check the store.

A child (store_crash_writer.py) writes slides, tilings of thousands of tiles, correction
versions and rasters (one-shot and chunked) in a loop, reporting every commit on stdout. The
parent kills it with SIGKILL after a random (seeded) delay, restarts it on the same data
folder, and at the end opens the store and checks that every reported record is there with
the content reported, that no partial tiling, correction chain or raster exists, and that no
staging folder is left.
"""

from __future__ import annotations

import json
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sqlalchemy import text
from store_crash_writer import array_checksum, checksum, tile_rows

from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.store.pyramid import downsample2, level_shapes
from pathloop.client.store.staging import STAGING

WRITER = Path(__file__).with_name("store_crash_writer.py")
KILLS = 24
SEED = 20_240_607


def _run_and_kill(data_dir: Path, seed: int, delay: float, log: Path) -> list[dict[str, Any]]:
    with log.open("a") as stderr:
        child = subprocess.Popen(
            [sys.executable, str(WRITER), str(data_dir), str(seed)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
        )
        assert child.stdout is not None
        ready = child.stdout.readline()
        # The kill comes a random delay after the writer's first commit of this run, however
        # fast the machine: every run gets into the loop, and no run can be killed too early
        # to matter or be judged by a commit rate.
        first = child.stdout.readline()
        if not ready or not first:
            child.wait()
            pytest.fail(f"the writer died before committing:\n{log.read_text()[-3000:]}")
        time.sleep(delay)
        child.send_signal(signal.SIGKILL)
        rest, _ = child.communicate()
    if child.returncode != -signal.SIGKILL:
        pytest.fail(f"the writer ended by itself ({child.returncode}):\n{log.read_text()[-3000:]}")
    lines = [ready, first, *rest.splitlines(keepends=True)]
    return [json.loads(line) for line in lines if line.endswith("\n")]


@pytest.mark.slow
def test_sigkill_mid_save_loses_nothing_committed_and_leaves_nothing_partial(
    tmp_path: Path,
) -> None:
    data_dir = tmp_path / "data"
    rng = random.Random(SEED)
    reported: dict[str, list[dict[str, Any]]] = defaultdict(list)
    leftovers = 0
    start = time.perf_counter()
    for kill in range(KILLS):
        events = _run_and_kill(data_dir, kill, rng.uniform(0.05, 0.9), tmp_path / "stderr.log")
        leftovers += events[0]["leftovers"]
        for event in events[1:]:
            reported[event["event"]].append(event)
    killing = time.perf_counter() - start
    assert sum(len(events) for events in reported.values()) >= KILLS  # one commit a run

    settings = SiteSettings(site_id="crash-site", data_dir=data_dir)
    final_leftovers = len(list((settings.raster_dir / STAGING).glob("*.lock")))
    with Store.open(settings) as store:
        assert list((settings.raster_dir / STAGING).iterdir()) == []
        counts = _check_every_record(store, reported)
    print(
        f"\n{KILLS} SIGKILLs in {killing:.1f} s; reported commits: "
        + ", ".join(f"{len(v)} {k}s" for k, v in sorted(reported.items()))
        + f"; in the database: {counts}; unfinished raster writes swept: "
        f"{leftovers + final_leftovers}"
    )


def _check_every_record(store: Store, reported: dict[str, list[dict[str, Any]]]) -> dict[str, int]:
    for event in reported["slide"]:
        assert store.get_slide(event["id"]).content_hash == event["checksum"]

    for event in reported["tiling"]:
        tiles = [
            {
                "row": t.row,
                "col": t.col,
                "x": t.x,
                "y": t.y,
                "width": t.width,
                "height": t.height,
                "tissue_fraction": t.tissue_fraction,
                "background_fraction": t.background_fraction,
            }
            for t in store.iter_tiles(event["id"])
        ]
        assert len(tiles) == event["n_tiles"]
        assert checksum(tile_rows(tiles)) == event["checksum"]

    with store.engine.connect() as connection:
        sql = connection.execute
        # No partial tiling, reported or not: each has exactly n_tiles tiles.
        partial = sql(
            text(
                "SELECT t.id FROM tilings t LEFT JOIN tiles x ON x.tiling_id = t.id "
                "GROUP BY t.id, t.n_tiles HAVING count(x.id) != t.n_tiles"
            )
        ).all()
        assert partial == []
        # Correction versions are contiguous 1..N and each names its predecessor as parent.
        versions: dict[int, list[tuple[int, int, int | None]]] = defaultdict(list)
        for thread, version_id, version, parent in sql(
            text(
                "SELECT correction_id, id, version, parent_id FROM correction_versions "
                "ORDER BY correction_id, version"
            )
        ):
            versions[thread].append((version_id, version, parent))
        for chain in versions.values():
            assert [version for _, version, _ in chain] == list(range(1, len(chain) + 1))
            assert [parent for _, _, parent in chain] == [None] + [vid for vid, _, _ in chain[:-1]]
        counts = {
            table: sql(text(f"SELECT count(*) FROM {table}")).scalar_one()
            for table in ("slides", "tilings", "tiles", "correction_versions", "rasters")
        }
        audited: dict[str, int] = dict(
            sql(text("SELECT action, count(*) FROM audit_events GROUP BY action")).all()
        )
        raster_ids = sql(text("SELECT id FROM rasters")).scalars().all()

    for event in reported["correction"]:
        (version,) = [
            v
            for v in store.correction_history(_box_of(store, event["correction_id"]))
            if v.id == event["id"]
        ]
        assert version.version == event["version"]
        assert checksum(version.data) == event["checksum"]

    # Every raster record opens, matches its checksum, and has its whole pyramid.
    by_id = {event["id"]: event["checksum"] for event in reported["raster"]}
    for raster_id in raster_ids:
        raster = store.rasters.open_raster(raster_id)
        base = raster.read()
        assert array_checksum(base) == raster.attributes["checksum"]
        assert by_id.get(raster_id, raster.attributes["checksum"]) == raster.attributes["checksum"]
        assert [level.shape for level in raster.levels] == level_shapes(base.shape)
        expected = downsample2(base, raster.record.downsample)
        np.testing.assert_array_equal(raster.read(1), expected)
    assert set(by_id) <= set(raster_ids)

    # Every change was audited with its record (same transaction), and no folder is orphaned.
    assert audited.get("slide.add") == counts["slides"]
    assert audited.get("tiling.add") == counts["tilings"]
    assert audited.get("correction.save") == counts["correction_versions"]
    assert audited.get("raster.add") == counts["rasters"]
    folders = {
        str(path.relative_to(store.rasters.root))
        for path in store.rasters.root.glob("slide-*/*/*.zarr")
    }
    assert folders == {store.rasters.get(raster_id).path for raster_id in raster_ids}
    return counts


def _box_of(store: Store, correction_id: int) -> Any:
    from pathloop.client.store.records import PatchBox

    with store.engine.connect() as connection:
        row = connection.execute(
            text("SELECT slide_id, x, y, width, height, mpp FROM corrections WHERE id = :id"),
            {"id": correction_id},
        ).one()
    return PatchBox(*row)
