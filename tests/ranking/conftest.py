"""Fixtures of the ranking tests: a store in a temporary folder and the CMU slide in it."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.tiling import TissueMask, compute_tissue_mask
from pathloop.client.wsi import Slide, open_slide


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """An open store in a temporary folder."""
    with Store.open(SiteSettings(site_id="site-a", data_dir=tmp_path / "data")) as opened:
        yield opened


@pytest.fixture(scope="module")
def cmu(cmu_svs: Path) -> Iterator[Slide]:
    """The CMU slide, open for the module (2220×2967 at 0.499 µm/px, tissue in a band)."""
    with open_slide(cmu_svs) as slide:
        yield slide


@pytest.fixture(scope="module")
def cmu_tissue(cmu: Slide) -> TissueMask:
    """The CMU slide's tissue mask (8 µm/px)."""
    return compute_tissue_mask(cmu)
