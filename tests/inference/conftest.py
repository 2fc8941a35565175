"""Fixtures of the inference tests: a store in a temporary folder."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    """An open store in a temporary folder."""
    with Store.open(SiteSettings(site_id="site-a", data_dir=tmp_path / "data")) as opened:
        yield opened
