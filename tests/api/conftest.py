"""A site built once per module from the real CMU slide, and clients of its API."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from support.site import make_site

from pathloop.client.api import create_app
from pathloop.client.settings import SiteSettings


@pytest.fixture(scope="module")
def site(cmu_svs: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[SiteSettings, str]:
    """The CMU slide ingested, tiled, predicted (fake folds) and ranked; a user's token."""
    return make_site(tmp_path_factory.mktemp("api"), cmu_svs)


@pytest.fixture(scope="module")
def client(site: tuple[SiteSettings, str]) -> Iterator[TestClient]:
    """A client of the site's API, sending the user's token."""
    settings, token = site
    with TestClient(create_app(settings, viewer_dir=Path("/nonexistent")),
                    headers={"Authorization": f"Bearer {token}"}) as test_client:
        yield test_client
