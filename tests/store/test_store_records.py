"""Slides, tilings, model versions and rankings: frozen records in, frozen records out."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text

import pathloop.client.store
from pathloop.client.errors import ConflictError, RecordNotFoundError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import SlideRecord, Store


def _slide_fields(label: str, **overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "content_hash": hashlib.sha256(label.encode()).hexdigest(),
        "name": label,
        "path": f"/slides/{label}",
        "width": 1000,
        "height": 800,
        "mpp_x": 0.5,
        "mpp_y": 0.5,
    }
    return fields | overrides


def test_add_slide_is_idempotent_per_site_and_hash(store: Store) -> None:
    first, created = store.add_slide(**_slide_fields("a.svs"))
    again, created_again = store.add_slide(**_slide_fields("a.svs", name="renamed.svs"))
    assert created and not created_again
    assert again == first  # the known record, unchanged
    other_site, created_other = store.add_slide(**_slide_fields("a.svs"), site_id="site-b")
    assert created_other and other_site.id != first.id
    assert store.list_slides() == [first, other_site]
    assert store.list_slides("site-a") == [first]
    assert len(store.audit_events(action="slide.add")) == 2


def test_slide_round_trip(store: Store, slide: SlideRecord) -> None:
    assert store.get_slide(slide.id) == slide
    assert store.find_slide(slide.content_hash) == slide
    assert store.find_slide(slide.content_hash, "elsewhere") is None
    assert slide.path == Path("/slides/slide-1.svs")
    assert slide.metadata == {"aperio.AppMag": "40"}
    assert slide.added_at.tzinfo is not None
    with pytest.raises(dataclasses.FrozenInstanceError):
        slide.name = "x"  # type: ignore[misc]


def test_missing_and_invalid_slides(store: Store) -> None:
    with pytest.raises(RecordNotFoundError):
        store.get_slide(99)
    with pytest.raises(ValueError, match="hex"):
        store.add_slide(**_slide_fields("b.svs", content_hash="not-a-hash"))
    with pytest.raises(ValueError, match="resolution"):
        store.add_slide(**_slide_fields("b.svs", mpp_x=0.0))
    assert store.list_slides() == []


def _grid(columns: int, rows: int) -> Iterator[dict[str, Any]]:
    for row in range(rows):
        for col in range(columns):
            yield {
                "col": col,
                "row": row,
                "x": col * 1024,
                "y": row * 1024,
                "width": 1024,
                "height": 1024,
                "tissue_fraction": (col % 10) / 10,
                "background_fraction": (row % 4) / 4,
            }


def test_a_100k_tile_tiling_is_saved_and_read_back(
    store: Store, slide: SlideRecord
) -> None:
    start = time.perf_counter()
    tiling = store.add_tiling(
        slide.id,
        mpp=0.5,
        tile_size=512,
        stride=512,
        params={"min_tissue": 0.25},
        tiles=_grid(400, 250),
    )
    saved = time.perf_counter() - start
    start = time.perf_counter()
    tiles = list(store.iter_tiles(tiling.id))
    read = time.perf_counter() - start
    print(f"100,000 tiles: saved in {saved:.2f} s, read back in {read:.2f} s")
    assert tiling.n_tiles == 100_000 and len(tiles) == 100_000
    assert [(t.row, t.col) for t in tiles[:3]] == [(0, 0), (0, 1), (0, 2)]
    assert tiles[-1].row == 249 and tiles[-1].col == 399
    assert (tiles[-1].x, tiles[-1].y, tiles[-1].width) == (399 * 1024, 249 * 1024, 1024)
    assert tiles[12].tissue_fraction == pytest.approx(0.2)
    assert store.latest_tiling(slide.id) == tiling
    assert tiling.params == {"min_tissue": 0.25}


def test_tiles_may_be_objects_like_tile_specs(store: Store, slide: SlideRecord) -> None:
    @dataclasses.dataclass
    class Spec:
        col: int
        row: int
        x: int
        y: int
        width: int
        height: int

    tiling = store.add_tiling(
        slide.id, mpp=1.0, tile_size=256, stride=256, tiles=[Spec(0, 0, 0, 0, 1024, 1024)]
    )
    (tile,) = store.iter_tiles(tiling.id)
    assert tile.tissue_fraction is None and tile.width == 1024


def test_a_failing_tiling_leaves_nothing(store: Store, slide: SlideRecord) -> None:
    def tiles() -> Iterator[dict[str, Any]]:
        yield from _grid(100, 150)  # 15,000 tiles: past the first insert batch
        yield {"col": 0}  # a broken tile

    with pytest.raises(ValueError, match="lacks"):
        store.add_tiling(slide.id, mpp=1.0, tile_size=256, stride=256, tiles=tiles())
    with pytest.raises(ValueError, match="share"):
        store.add_tiling(
            slide.id, mpp=1.0, tile_size=256, stride=256, tiles=[*_grid(2, 1), *_grid(1, 1)]
        )
    assert store.latest_tiling(slide.id) is None
    with store.engine.connect() as connection:
        assert connection.execute(text("SELECT count(*) FROM tiles")).scalar() == 0
    assert store.audit_events(action="tiling.add") == []


def test_latest_tiling_filters_by_resolution(store: Store, slide: SlideRecord) -> None:
    coarse = store.add_tiling(slide.id, mpp=2.0, tile_size=256, stride=256, tiles=_grid(2, 2))
    fine = store.add_tiling(slide.id, mpp=0.5, tile_size=256, stride=128, tiles=_grid(3, 2))
    assert store.latest_tiling(slide.id) == fine
    assert store.latest_tiling(slide.id, mpp=2.0) == coarse
    assert store.latest_tiling(slide.id, tile_size=512) is None
    with pytest.raises(RecordNotFoundError):
        store.latest_tiling(42)
    with pytest.raises(RecordNotFoundError):
        list(store.iter_tiles(42))


def test_model_versions_keep_their_lineage(store: Store) -> None:
    base = store.add_model_version(name="uga-r0", kind="uga-ensemble", weights_uri="file:///w0")
    child = store.add_model_version(
        name="uga-r1",
        kind="uga-ensemble",
        parent_id=base.id,
        provenance={"round": 1, "sites": ["site-a", "site-b"]},
    )
    assert store.get_model_version(child.id) == child
    assert child.parent_id == base.id and child.provenance["sites"] == ["site-a", "site-b"]
    with pytest.raises(RecordNotFoundError):
        store.add_model_version(name="orphan", kind="uga-ensemble", parent_id=99)
    other = store.add_model_version(name="inspect", kind="ai2seg")
    assert store.latest_model_version("uga-ensemble") == child
    assert store.latest_model_version("ai2seg") == other
    assert store.latest_model_version("upgrade") is None
    assert store.latest_model_version("uga-ensemble", "uga-r0") == base


def test_rankings_and_worklist_status(store: Store, slide: SlideRecord) -> None:
    model = store.add_model_version(name="uga-r0", kind="uga-ensemble")
    patches = [
        {
            "x": 0,
            "y": 0,
            "width": 1024,
            "height": 1024,
            "mpp": 1.0,
            "score_sum": 9.0,
            "score_mean": 0.9,
        },
        {
            "x": 1024,
            "y": 0,
            "width": 1024,
            "height": 1024,
            "mpp": 1.0,
            "score_sum": 5.0,
            "score_mean": 0.5,
        },
    ]
    ranking = store.add_ranking(
        slide.id, strategy="uga", model_version_id=model.id, patches=patches, params={"k": 2}
    )
    assert ranking.n_patches == 2 and store.latest_ranking(slide.id) == ranking
    assert store.latest_ranking(slide.id, strategy="random") is None
    first, second = store.ranked_patches(ranking.id)
    assert (first.rank, first.score_sum, first.status) == (1, 9.0, "pending")
    assert second.x == 1024 and second.slide_id == slide.id
    skipped = store.set_patch_status(second.id, "skipped", actor="dr-who")
    assert skipped.status == "skipped"
    assert store.ranked_patches(ranking.id, status="pending") == [first]
    assert store.audit_events(action="ranked_patch.status")[0].actor == "dr-who"
    with pytest.raises(ValueError):
        store.set_patch_status(first.id, "done")  # type: ignore[arg-type]
    with pytest.raises(RecordNotFoundError):
        store.add_ranking(slide.id, strategy="uga", model_version_id=77, patches=patches)


def test_the_public_surface() -> None:
    assert set(pathloop.client.store.__all__) == {
        "AdoptionOutcome", "AdoptionRecord", "AuditEvent", "CorrectionRecord", "Downsample",
        "ModelVersionRecord", "MppSource", "InspectionItemInput", "InspectionItemRecord",
        "InspectionRecord", "InspectionSource", "InstanceFindingRecord", "InstanceStateName",
        "OpenRaster", "PatchBox", "PatchStatus", "RankedPatchRecord", "RankingRecord",
        "RasterRecord", "RasterStore", "RasterWriter", "SlideRecord", "Store", "TileRecord",
        "TilingRecord",
    }  # fmt: skip
    methods = {name for name in vars(Store) if not name.startswith("_")}
    assert methods == {
        "open", "close", "add_slide", "get_slide", "find_slide", "list_slides", "add_tiling",
        "latest_tiling", "iter_tiles", "add_model_version", "get_model_version",
        "latest_model_version", "current_model_version", "record_adoption",
        "count_adoptions", "adoption_history", "add_ranking",
        "latest_ranking", "ranked_patches", "set_patch_status", "get_ranked_patch",
        "claim_patch", "release_patch", "save_correction",
        "latest_corrections", "correction_history", "audit_events", "record_event",
        "add_inspection", "list_inspections", "get_inspection", "inspection_items",
        "inspection_item", "instance_findings",
    }  # fmt: skip


def test_a_claim_is_held_by_one_user_and_audited(tmp_path: Path) -> None:
    with Store.open(SiteSettings(site_id="s", data_dir=tmp_path)) as store:
        slide, _ = store.add_slide(content_hash="c" * 64, name="x.svs", path=tmp_path / "x",
                                   width=100, height=100, mpp_x=0.5, mpp_y=0.5)
        ranking = store.add_ranking(slide.id, strategy="uga", patches=[
            {"x": 0, "y": 0, "width": 50, "height": 50, "mpp": 0.5, "score_sum": 1.0,
             "score_mean": 0.5}])
        patch = store.ranked_patches(ranking.id)[0]
        claimed = store.claim_patch(patch.id, "ann")
        assert claimed.claimed_by == "ann" and claimed.claimed_at is not None
        assert store.claim_patch(patch.id, "ann") == claimed  # one's own claim: no change
        with pytest.raises(ConflictError, match="claimed by ann"):
            store.claim_patch(patch.id, "bob")
        with pytest.raises(ConflictError, match="not bob"):
            store.release_patch(patch.id, "bob")
        assert store.claim_patch(patch.id, "bob", force=True).claimed_by == "bob"
        assert store.release_patch(patch.id, "bob").claimed_by is None
        store.claim_patch(patch.id, "ann")
        assert store.release_patch(patch.id, "rev", force=True).claimed_by is None
        events = store.audit_events(subject=f"ranked_patch:{patch.id}")
        assert [e.action for e in events] == [
            "ranked_patch.claim", "ranked_patch.claim", "ranked_patch.release",
            "ranked_patch.claim", "ranked_patch.release"]
        assert events[-1].actor == "rev"
        assert events[-1].details == {"from": "ann", "forced": True}


def test_the_data_folder_is_made_and_kept_owner_only(tmp_path: Path) -> None:
    fresh = SiteSettings(site_id="s", data_dir=tmp_path / "new" / "data")
    with Store.open(fresh):
        pass
    assert (fresh.data_dir.stat().st_mode & 0o777) == 0o700
    older = tmp_path / "older"
    older.mkdir(mode=0o755)
    older.chmod(0o755)  # an install from before: open to every user of the machine
    with Store.open(SiteSettings(site_id="s", data_dir=older)):
        pass
    assert (older.stat().st_mode & 0o777) == 0o700
