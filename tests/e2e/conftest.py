"""Browser end-to-end tests: Debian's chromium, headless, driving the real site service.

The service runs in a thread on a free 127.0.0.1 port (``tests/support/site.py``) over a
real site store: the CMU pyramid, its prediction and uncertainty rasters and a ranked
worklist from a fake ensemble. It serves the built viewer (``viewer/dist``, from
``make viewer``). Only 127.0.0.1 URLs are ever opened.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from support.viewer_page import REPO, Site

VIEWER_DIST = REPO / "viewer" / "dist"
CHROMIUM = Path("/usr/bin/chromium")
# No GPU, no network: keep Chromium from reaching out (it retries otherwise).
CHROMIUM_ARGS = [
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
LAPTOP = {"width": 1366, "height": 768}


def _missing(message: str) -> None:
    """Fails in CI (which must run these tests), skips on a machine without the piece."""
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args: dict) -> dict:
    """The system chromium (``playwright install`` cannot download browsers here)."""
    if not CHROMIUM.exists():
        _missing(f"{CHROMIUM} missing: apt-get install -y chromium")
    return {**browser_type_launch_args, "executable_path": str(CHROMIUM), "args": CHROMIUM_ARGS}


@pytest.fixture(scope="session")
def browser_context_args(browser_context_args: dict) -> dict:
    """A 1366×768 laptop screen."""
    return {**browser_context_args, "viewport": LAPTOP}


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, cmu_pyramid: Path) -> Iterator[Site]:
    """A site with the CMU pyramid, its rasters and a ranked worklist, served on 127.0.0.1."""
    if not (VIEWER_DIST / "index.html").exists():
        _missing(f"the viewer is not built ({VIEWER_DIST}): run `make viewer`")
    from support.site import app_server, make_site

    settings, token = make_site(tmp_path_factory.mktemp("site"), cmu_pyramid)
    with app_server(settings) as url:
        assert url.startswith("http://127.0.0.1:"), url
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as api:
            yield Site(url=url, token=token, api=api)
