"""Shared fixtures: the real data in ../shared/data, and pyramids built from it."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import tifffile

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


def _shared(relative: str) -> Path:
    path = SHARED_DATA / relative
    if not path.exists():
        message = f"real data missing: {path} (../shared/data beside the repository)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return path


#: Fixtures that read ``../shared/data``; a test using any of them, directly or through
#: other fixtures, is marked ``realdata`` (``pytest -m "not realdata"`` runs without it).
REAL_DATA_FIXTURES = frozenset({"shared_data", "cmu_svs"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if REAL_DATA_FIXTURES & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.realdata)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """``../shared/data``; fails in CI when missing, skips elsewhere."""
    return _shared("")


@pytest.fixture(scope="session")
def cmu_svs() -> Path:
    """CMU-1-Small-Region: Aperio SVS, 2220×2967, one level, 0.499 µm/px."""
    return _shared("wsi/cmu_small_region.svs")


@pytest.fixture(scope="session")
def cmu_pyramid(cmu_svs: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real multi-level pyramid built from the CMU slide: downsamples 1, 2, 4, 8.

    Written with tifffile as a tiled JPEG TIFF (256×256 tiles, reduced levels as
    ``subfiletype=1`` pages) with resolution tags in pixels per centimetre.
    """
    import openslide

    with openslide.OpenSlide(str(cmu_svs)) as source:
        level0 = np.asarray(source.read_region((0, 0), 0, source.dimensions).convert("RGB"))
    path = tmp_path_factory.mktemp("pyramid") / "cmu_pyramid.tiff"
    mpp = 0.499
    with tifffile.TiffWriter(path) as tiff:
        for k, ds in enumerate((1, 2, 4, 8)):
            level = level0[::ds, ::ds] if ds == 1 else _downsample(level0, ds)
            per_cm = 1e4 / (mpp * ds)
            tiff.write(level, tile=(256, 256), compression="jpeg", photometric="rgb",
                       subfiletype=1 if k else 0, resolution=(per_cm, per_cm),
                       resolutionunit="CENTIMETER")
    return path


def _downsample(image: np.ndarray, factor: int) -> np.ndarray:
    h = image.shape[0] // factor * factor
    w = image.shape[1] // factor * factor
    blocks = image[:h, :w].reshape(h // factor, factor, w // factor, factor, 3)
    return blocks.mean(axis=(1, 3)).round().astype(np.uint8)
