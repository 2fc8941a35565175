"""Child process of test_store_crash.py: writes to a store until it is killed.

Usage: ``python store_crash_writer.py DATA_DIR SEED``. After each commit it prints one JSON
line saying what was committed (ids and a checksum of the content) and flushes, so every line
the parent reads describes a committed record. It opens the store first (which sweeps what
the previous, killed, writer left) and says ``ready`` with the number of leftovers it found.
"""

from __future__ import annotations

import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

import numpy as np

from pathloop.client.settings import SiteSettings
from pathloop.client.store import PatchBox, Store
from pathloop.client.store.staging import STAGING


def checksum(value: object) -> str:
    """SHA-256 of a JSON-compatible value (the parent computes the same from the store)."""
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def array_checksum(array: np.ndarray[Any, Any]) -> str:
    """SHA-256 of an array's dtype, shape and bytes."""
    digest = hashlib.sha256(f"{array.dtype.str}{array.shape}".encode())
    digest.update(np.ascontiguousarray(array).tobytes())
    return digest.hexdigest()


def tile_rows(tiles: list[dict[str, Any]]) -> list[list[Any]]:
    """The tiles as comparable rows, in (row, col) order."""
    keys = ("row", "col", "x", "y", "width", "height", "tissue_fraction", "background_fraction")
    return sorted([tile[key] for key in keys] for tile in tiles)


def _emit(**event: Any) -> None:
    sys.stdout.write(json.dumps(event) + "\n")
    sys.stdout.flush()


def _tiles(rng: random.Random, count: int) -> list[dict[str, Any]]:
    columns = 64
    return [
        {
            "col": i % columns,
            "row": i // columns,
            "x": (i % columns) * 512,
            "y": (i // columns) * 512,
            "width": 512,
            "height": 512,
            "tissue_fraction": round(rng.random(), 6),
            "background_fraction": round(rng.random(), 6),
        }
        for i in range(count)
    ]


def _raster(store: Store, rng: np.random.Generator, slide_id: int, chunked: bool) -> None:
    height, width = int(rng.integers(300, 1200)), int(rng.integers(300, 1200))
    if chunked:
        data: np.ndarray[Any, Any] = rng.random((height, width)).astype(np.float16)
        total = array_checksum(data)
        with store.rasters.create(
            slide_id,
            "uncertainty",
            shape=data.shape,
            dtype=data.dtype,
            mpp=2.0,
            downsample="mean",
            chunk=256,
            attributes={"checksum": total},
        ) as writer:
            for y in range(0, height, 256):
                for x in range(0, width, 256):
                    writer.write_region(y, x, data[y : y + 256, x : x + 256])
        record = writer.record
    else:
        data = rng.integers(1, 5, (height, width), dtype=np.uint8)
        total = array_checksum(data)
        record = store.rasters.save(
            data,
            slide_id,
            "tissue-mask",
            mpp=8.0,
            downsample="mode",
            attributes={"checksum": total},
        )
    _emit(event="raster", id=record.id, version=record.version, checksum=total)


def main(data_dir: Path, seed: int) -> None:
    staging = data_dir / "rasters" / STAGING
    leftovers = len(list(staging.glob("*.lock"))) if staging.is_dir() else 0
    store = Store.open(SiteSettings(site_id="crash-site", data_dir=data_dir))
    _emit(event="ready", leftovers=leftovers)
    rng = random.Random(seed)
    np_rng = np.random.default_rng(seed)
    for n in range(1_000_000):
        content_hash = hashlib.sha256(f"slide {seed} {n}".encode()).hexdigest()
        slide, _ = store.add_slide(
            content_hash=content_hash,
            name=f"s{seed}-{n}.svs",
            path=f"/slides/s{seed}-{n}.svs",
            width=32768,
            height=40000,
            mpp_x=0.25,
            mpp_y=0.25,
        )
        _emit(event="slide", id=slide.id, checksum=content_hash)

        tiles = _tiles(rng, rng.randint(2000, 5000))
        tiling = store.add_tiling(slide.id, mpp=1.0, tile_size=128, stride=128, tiles=tiles)
        _emit(event="tiling", id=tiling.id, n_tiles=len(tiles), checksum=checksum(tile_rows(tiles)))

        box = PatchBox(slide.id, 512 * rng.randint(0, 60), 0, 1024, 1024, 1.0)
        base = None
        for _ in range(rng.randint(2, 4)):
            data = {"features": [rng.random() for _ in range(rng.randint(1, 50))]}
            version = store.save_correction(box, data=data, author="crash", base_version=base)
            base = version.version
            _emit(
                event="correction",
                id=version.id,
                correction_id=version.correction_id,
                version=version.version,
                checksum=checksum(data),
            )

        _raster(store, np_rng, slide.id, chunked=False)
        _raster(store, np_rng, slide.id, chunked=True)
        _raster(store, np_rng, slide.id, chunked=n % 2 == 0)  # a second version of one kind


if __name__ == "__main__":
    main(Path(sys.argv[1]), int(sys.argv[2]))
