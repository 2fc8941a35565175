"""Driving the viewer like a pathologist: open it, open slides and patches, paint, read back.

Waits are on the viewer's own signals (OpenSeadragon's fully-loaded state through
``window.pathloopTilesLoaded()``, the editor's state through ``window.pathloopEditor``,
``<body data-busy="0">``), never on sleeps.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

import httpx
import numpy as np
from PIL import Image
from playwright.sync_api import Page, expect

REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Site:
    """A running site service: its base URL, a token, and an API client holding the token."""

    url: str
    token: str
    api: httpx.Client

    @property
    def viewer_url(self) -> str:
        """The address ``pathloop serve`` prints: the token in the fragment."""
        return f"{self.url}/#token={self.token}"


@dataclass(frozen=True)
class MaskBox:
    """Where the open patch's editing canvas is on screen, and its size in mask px."""

    x: float
    y: float
    width: float
    height: float
    mask_width: int
    mask_height: int

    def screen(self, mx: float, my: float) -> tuple[float, float]:
        """The screen point over mask pixel (mx, my)'s centre."""
        return (self.x + (mx + 0.5) * self.width / self.mask_width,
                self.y + (my + 0.5) * self.height / self.mask_height)


def open_viewer(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("body")).to_have_attribute("data-ready", "true")


def settle(page: Page) -> None:
    """Until no request of the viewer's is running and every visible layer's tiles are in."""
    expect(page.locator("body")).to_have_attribute("data-busy", "0")
    page.evaluate("window.pathloopTilesLoaded()")


def open_slide(page: Page, slide_id: int) -> None:
    page.locator(f"[data-testid=slide-item][data-slide-id='{slide_id}']").click()
    expect(page.locator(f"[data-testid=slide-item][data-slide-id='{slide_id}']")).to_have_class(
        "slide-item current")
    settle(page)


def wait_for_patch(page: Page, patch_id: int) -> MaskBox:
    """Until the editor holds `patch_id` and the view has settled on it."""
    page.wait_for_function(f"window.pathloopEditor.patchId === {patch_id}")
    settle(page)
    box = page.get_by_test_id("mask-canvas").bounding_box()
    assert box is not None
    size = page.evaluate("window.pathloopEditor.maskSize")
    return MaskBox(box["x"], box["y"], box["width"], box["height"], size["width"], size["height"])


def label_at(page: Page, mx: int, my: int) -> int:
    return int(page.evaluate(f"window.pathloopEditor.labelAt({mx}, {my})"))


def labels_on_row(page: Page, my: int, x0: int, x1: int) -> list[int]:
    return list(page.evaluate(
        "([x0, x1, y]) => Array.from({length: x1 - x0},"
        " (_, i) => window.pathloopEditor.labelAt(x0 + i, y))", [x0, x1, my]))


def canvas_rgba(page: Page, mx: int, my: int) -> list[int]:
    """The editing canvas's pixel over mask pixel (mx, my) (getImageData)."""
    return list(page.evaluate(
        "([x, y]) => Array.from(document.querySelector('[data-testid=mask-canvas]')"
        ".getContext('2d').getImageData(x, y, 1, 1).data)", [mx, my]))


def drag(page: Page, box: MaskBox, start: tuple[float, float], end: tuple[float, float]) -> None:
    """A mouse drag between two mask points (a brush or eraser stroke)."""
    page.mouse.move(*box.screen(*start))
    page.mouse.down()
    page.mouse.move(*box.screen(*end), steps=12)
    page.mouse.up()


def viewport_center(page: Page) -> tuple[float, float]:
    c = page.evaluate("(() => { const c = window.pathloopViewer.viewport.getCenter();"
                      " return [c.x, c.y]; })()")
    return float(c[0]), float(c[1])


def server_mask(api: httpx.Client, patch_id: int, source: str = "latest") -> np.ndarray:
    """The patch's mask as the server holds it: (mask_height, mask_width) uint8 label values."""
    response = api.get(f"/api/patches/{patch_id}/mask", params={"source": source})
    response.raise_for_status()
    assert response.headers["content-type"].startswith("image/png")
    return np.asarray(Image.open(io.BytesIO(response.content)))
