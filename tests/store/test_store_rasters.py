"""zarr rasters: pyramids, multiscales metadata, chunked writing, atomic publication."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

import numpy as np
import pytest
import zarr

from pathloop.client.errors import StoreError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import SlideRecord, Store, raster_records
from pathloop.client.store.pyramid import downsample2, level_shapes
from pathloop.client.store.staging import STAGING


def _zarr_folders(root: Path) -> set[str]:
    return {
        str(path.relative_to(root))
        for path in root.rglob("*.zarr")
        if STAGING not in path.relative_to(root).parts
    }


def _attributes(folder: Path) -> dict[str, Any]:
    return cast(dict[str, Any], zarr.open_group(folder, mode="r").attrs.asdict())


def test_level_shapes_halve_until_below_256() -> None:
    assert level_shapes((1100, 700)) == [(1100, 700), (550, 350), (275, 175), (138, 88)]
    assert level_shapes((255, 100, 3)) == [(255, 100, 3)]
    assert level_shapes((256, 10)) == [(256, 10), (128, 5)]


def test_downsampling_methods() -> None:
    labels = np.array([[1, 1, 2], [3, 1, 2], [4, 5, 2]], np.uint8)
    assert downsample2(labels, "mode").tolist() == [[1, 2], [4, 2]]
    assert downsample2(labels, "nearest").tolist() == [[1, 2], [4, 2]]
    tie = np.array([[7, 8], [8, 7]], np.uint8)
    assert downsample2(tie, "mode").tolist() == [[7]]  # ties go to the top-left value
    values = np.array([[0.0, 1.0, 5.0], [2.0, 3.0, 7.0]], np.float16)
    mean = downsample2(values, "mean")
    assert mean.dtype == np.float16 and mean.tolist() == [[1.5, 6.0]]
    rgb = np.arange(2 * 2 * 3, dtype=np.float32).reshape(2, 2, 3)
    assert downsample2(rgb, "mean").tolist() == [[[4.5, 5.5, 6.5]]]


def test_save_builds_the_pyramid_and_multiscales_metadata(store: Store, slide: SlideRecord) -> None:
    mask = (np.random.default_rng(0).random((1100, 700)) * 3).astype(np.uint8)
    record = store.rasters.save(
        mask, slide.id, "tissue-mask", mpp=8.0, downsample="mode", attributes={"otsu": 201}
    )
    assert (record.version, record.levels, record.shape, record.dtype) == (
        1,
        4,
        (1100, 700),
        "uint8",
    )
    raster = store.rasters.open_raster(record)
    assert [level.shape for level in raster.levels] == level_shapes((1100, 700))
    assert raster.mpps == (8.0, 16.0, 32.0, 64.0)
    assert raster.levels[0].chunks == (512, 512)
    np.testing.assert_array_equal(raster.read(), mask)
    np.testing.assert_array_equal(raster.read(1), downsample2(mask, "mode"))
    assert raster.attributes == {"otsu": 201}

    attrs = _attributes(store.rasters.root / record.path)
    (multiscale,) = attrs["ome"]["multiscales"]
    assert [axis["name"] for axis in multiscale["axes"]] == ["y", "x"]
    assert multiscale["axes"][0]["unit"] == "micrometer"
    assert [d["path"] for d in multiscale["datasets"]] == ["0", "1", "2", "3"]
    scales = [d["coordinateTransformations"][0]["scale"] for d in multiscale["datasets"]]
    assert scales == [[8.0, 8.0], [16.0, 16.0], [32.0, 32.0], [64.0, 64.0]]
    assert attrs["pathloop"]["kind"] == "tissue-mask" and attrs["pathloop"]["slide_id"] == slide.id


def test_float16_channels_are_averaged(store: Store, slide: SlideRecord) -> None:
    heat = np.random.default_rng(1).random((600, 520, 2)).astype(np.float16)
    record = store.rasters.save(heat, slide.id, "uncertainty", mpp=1.0, downsample="mean")
    raster = store.rasters.open_raster(record.id)
    assert raster.levels[1].shape == (300, 260, 2) and raster.levels[1].dtype == np.float16
    np.testing.assert_array_equal(raster.read(), heat)
    expected = heat.astype(np.float64).reshape(300, 2, 260, 2, 2).mean(axis=(1, 3))
    np.testing.assert_allclose(raster.read(1), expected, atol=1e-3)
    attrs = _attributes(store.rasters.root / record.path)
    axes = attrs["ome"]["multiscales"][0]["axes"]
    assert [axis["name"] for axis in axes] == ["y", "x", "c"]


def test_the_chunked_writer_matches_a_one_shot_save(store: Store, slide: SlideRecord) -> None:
    full = np.random.default_rng(2).random((1500, 1300)).astype(np.float32)
    with store.rasters.create(
        slide.id,
        "prediction",
        shape=full.shape,
        dtype=np.float32,
        mpp=2.0,
        downsample="mean",
        chunk=256,
    ) as writer:
        for y in range(0, 1500, 256):
            for x in range(0, 1300, 256):
                writer.write_region(y, x, full[y : y + 256, x : x + 256].astype(np.float64))
        with pytest.raises(ValueError, match="does not fit"):
            writer.write_region(1400, 0, np.zeros((256, 256), np.float32))
        with pytest.raises(ValueError, match="cannot store"):
            writer.write_region(0, 0, np.zeros((2, 2), np.complex64))
    raster = store.rasters.open_raster(writer.record)
    assert raster.levels[0].chunks == (256, 256)
    np.testing.assert_array_equal(raster.read(), full)
    np.testing.assert_allclose(raster.read(1), downsample2(full, "mean"), rtol=1e-6)
    np.testing.assert_allclose(
        raster.read(2), downsample2(downsample2(full, "mean"), "mean"), rtol=1e-6
    )


def test_new_versions_keep_the_old_ones_readable(store: Store, slide: SlideRecord) -> None:
    old = store.rasters.save(
        np.zeros((300, 300), np.uint8), slide.id, "tissue-mask", mpp=8.0, downsample="mode"
    )
    new = store.rasters.save(
        np.ones((300, 300), np.uint8), slide.id, "tissue-mask", mpp=8.0, downsample="mode"
    )
    assert (old.version, new.version) == (1, 2) and old.path != new.path
    assert store.rasters.latest(slide.id, "tissue-mask") == new
    assert store.rasters.list_rasters(slide.id) == [old, new]
    assert store.rasters.open_raster(old).read().max() == 0
    assert store.rasters.open_raster(new).read().min() == 1


def test_a_failed_write_leaves_no_record_and_no_folder(store: Store, slide: SlideRecord) -> None:
    with (
        pytest.raises(RuntimeError),
        store.rasters.create(
            slide.id, "tissue-mask", shape=(600, 600), dtype=np.uint8, mpp=8.0, downsample="mode"
        ) as writer,
    ):
        writer.write_region(0, 0, np.ones((512, 512), np.uint8))
        raise RuntimeError("tiler crashed")
    assert store.rasters.list_rasters(slide.id) == []
    assert _zarr_folders(store.rasters.root) == set()
    assert list((store.rasters.root / STAGING).iterdir()) == []


def test_a_failure_between_rename_and_record_removes_the_folder(
    store: Store, slide: SlideRecord, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise StoreError("database went away")

    monkeypatch.setattr(raster_records, "add", refuse)
    with pytest.raises(StoreError, match="went away"):
        store.rasters.save(
            np.ones((40, 40), np.uint8), slide.id, "tissue-mask", mpp=8.0, downsample="mode"
        )
    assert _zarr_folders(store.rasters.root) == set()
    assert list((store.rasters.root / STAGING).iterdir()) == []


def test_open_sweeps_what_dead_writers_left(
    settings: SiteSettings, store: Store, slide: SlideRecord
) -> None:
    staging = store.rasters.staging
    kept = store.rasters.save(
        np.ones((40, 40), np.uint8), slide.id, "tissue-mask", mpp=8.0, downsample="mode"
    )
    # A writer that died mid-write: its lock file stays, its lock is gone with its process.
    dead = staging.reserve("slide-1/tissue-mask/dead.zarr")
    (dead.folder / "zarr.json").write_text("{}")
    os.close(dead.lock_fd)
    # A writer that died after its rename, before its record was committed.
    renamed = staging.reserve("slide-1/tissue-mask/renamed.zarr")
    staging.publish(renamed)
    os.close(renamed.lock_fd)
    # A writer that died after its commit, before deleting its lock file: keep its raster.
    committed = staging.reserve(kept.path)
    os.close(committed.lock_fd)
    # A writer still at work (in this or another process) is left alone.
    alive = staging.reserve("slide-1/tissue-mask/alive.zarr")

    with Store.open(settings) as reopened:
        assert sorted(p.name for p in staging.folder.iterdir()) == [
            f"{alive.token}.lock",
            f"{alive.token}.zarr",
        ]
        assert _zarr_folders(reopened.rasters.root) == {kept.path}
        np.testing.assert_array_equal(reopened.rasters.open_raster(kept).read(), 1)
    staging.discard(alive, published=False)
    assert list(staging.folder.iterdir()) == []


def test_a_missing_folder_is_reported(store: Store, slide: SlideRecord) -> None:
    record = store.rasters.save(
        np.ones((40, 40), np.uint8), slide.id, "tissue-mask", mpp=8.0, downsample="mode"
    )
    (store.rasters.root / record.path / "zarr.json").unlink()
    with pytest.raises(StoreError, match="missing or damaged"):
        store.rasters.open_raster(record)


def test_bad_arguments_are_refused(store: Store, slide: SlideRecord) -> None:
    with pytest.raises(ValueError, match="kind"):
        store.rasters.save(np.ones((4, 4)), slide.id, "../escape", mpp=1.0, downsample="mean")
    with pytest.raises(ValueError, match="shape"):
        store.rasters.save(np.ones(4), slide.id, "x", mpp=1.0, downsample="mean")
    assert not (store.rasters.root / STAGING).exists()
