"""Fixtures of the store tests: a real SQLite store in a temporary folder (no fake needed)."""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from pathlib import Path

import pytest

from pathloop.client.settings import SiteSettings
from pathloop.client.store import SlideRecord, Store


@pytest.fixture
def settings(tmp_path: Path) -> SiteSettings:
    """Settings of a site whose data folder is a fresh temporary folder."""
    return SiteSettings(site_id="site-a", data_dir=tmp_path / "data")


@pytest.fixture
def store(settings: SiteSettings) -> Iterator[Store]:
    """An open store on ``settings``."""
    with Store.open(settings) as opened:
        yield opened


@pytest.fixture
def slide(store: Store) -> SlideRecord:
    """One slide of 40,000 × 30,000 px at 0.25 µm/px."""
    record, _ = store.add_slide(
        content_hash=hashlib.sha256(b"slide-1").hexdigest(),
        name="slide-1.svs",
        path="/slides/slide-1.svs",
        width=40_000,
        height=30_000,
        mpp_x=0.25,
        mpp_y=0.25,
        vendor="aperio",
        objective_power=40.0,
        level_count=3,
        metadata={"aperio.AppMag": "40"},
    )
    return record
