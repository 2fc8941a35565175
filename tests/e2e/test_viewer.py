"""The pathologist's loop in a real browser: open a slide, jump to the most uncertain patch,
paint, save, reload, undo the save; conflicts, tools, the token, jobs and the laptop layout.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect
from support.viewer_page import (
    REPO,
    MaskBox,
    Site,
    canvas_rgba,
    drag,
    label_at,
    labels_on_row,
    open_slide,
    open_viewer,
    server_mask,
    settle,
    viewport_center,
    wait_for_patch,
)

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

# `PATHLOOP_VIEWER_SCREENSHOT=docs/images/viewer.png pytest tests/e2e` refreshes the docs' image.
DOCS_SCREENSHOT = os.environ.get("PATHLOOP_VIEWER_SCREENSHOT")


def _slide(site: Site) -> dict:
    slides = site.api.get("/api/slides").json()
    assert slides, "the site fixture has no slide"
    return site.api.get(f"/api/slides/{slides[0]['id']}").json()


def _top_pending(site: Site, slide_id: int) -> dict:
    items = site.api.get("/api/worklist", params={"slide_id": slide_id, "status": "pending"}).json()
    assert items, "no pending patch left in the worklist"
    return items[0]


def _stroke_plan(page: Page, box: MaskBox, labels: list[dict]) -> tuple[int, int, list[int]]:
    """A row and a label to paint it with that changes as many of its pixels as possible."""
    x0, x1 = box.mask_width // 4, box.mask_width * 3 // 4
    best: tuple[int, int, int, list[int]] | None = None
    for k in range(2, 7):
        row = box.mask_height * k // 8
        before = labels_on_row(page, row, x0, x1)
        for label in labels:
            changed = sum(value != label["value"] for value in before)
            if best is None or changed > best[0]:
                best = (changed, row, label["value"], before)
    assert best is not None and best[0] > 0, "every candidate row already holds the only label"
    _, row, value, before = best
    return row, value, before


def _choose_label(page: Page, value: int, key: str | None = None) -> None:
    """Chooses the brush's label in the select, or with its number key."""
    if key is None:
        page.get_by_test_id("label-select").select_option(str(value))
    else:
        page.keyboard.press(key)
    expect(page.get_by_test_id("label-select")).to_have_value(str(value))


def _save(page: Page, version: int) -> None:
    page.keyboard.press("Control+s")
    expect(page.locator(f"[data-testid=version-row][data-version='{version}']")).to_be_visible()
    settle(page)


def test_correct_the_top_patch_save_reload_and_undo(page: Page, site: Site, tmp_path: Path) -> None:
    slide = _slide(site)
    labels = [label for label in slide["labels"] if label["value"] > 0]
    me = site.api.get("/api/me").json()["user"]
    top = _top_pending(site, slide["id"])

    open_viewer(page, site.viewer_url)
    assert "token" not in page.url, "the token stays in the address bar"
    open_slide(page, slide["id"])
    expect(page.get_by_test_id("legend-uncertainty")).to_be_visible()

    page.get_by_test_id("next-patch").click()
    box = wait_for_patch(page, top["id"])
    assert (box.mask_width, box.mask_height) == (top["mask_width"], top["mask_height"])
    view = page.get_by_test_id("view").bounding_box()
    assert view is not None
    assert box.width > 0.4 * min(view["width"], view["height"]), "not zoomed to the patch"
    assert view["x"] <= box.x and box.x + box.width <= view["x"] + view["width"]
    assert site.api.get(f"/api/patches/{top['id']}").json()["claimed_by"] == me
    row_item = page.locator(f"[data-testid=worklist-item][data-patch-id='{top['id']}']")
    expect(row_item).to_contain_text(me)

    row, value, before = _stroke_plan(page, box, labels)
    _choose_label(page, value)
    x0, x1 = box.mask_width // 4, box.mask_width * 3 // 4
    centre = viewport_center(page)
    drag(page, box, (x0, row), (x1 - 1, row))
    assert viewport_center(page) == pytest.approx(centre), "painting panned the view"
    inner = slice(box.mask_width * 3 // 10 - x0, box.mask_width * 7 // 10 - x0)
    assert set(labels_on_row(page, row, x0, x1)[inner]) == {value}
    colour = next(label["color"] for label in labels if label["value"] == value)
    rgba = canvas_rgba(page, box.mask_width // 2, row)
    assert rgba[3] > 0
    assert rgba[:3] == pytest.approx([int(colour[i:i + 2], 16) for i in (1, 3, 5)], abs=3)
    assert page.evaluate("window.pathloopEditor.dirty")

    _save(page, 1)
    expect(row_item.get_by_test_id("status-badge")).to_have_text("corrected")
    versions = site.api.get(f"/api/patches/{top['id']}/versions").json()
    assert [(v["version"], v["action"], v["author"]) for v in versions] == [(1, "edit", me)]
    saved = server_mask(site.api, top["id"])
    assert saved.shape == (box.mask_height, box.mask_width)
    assert set(saved[row, box.mask_width * 3 // 10: box.mask_width * 7 // 10].tolist()) == {value}

    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    open_slide(page, slide["id"])
    row_item = page.locator(f"[data-testid=worklist-item][data-patch-id='{top['id']}']")
    expect(row_item.get_by_test_id("item-version")).to_have_text("v1")
    row_item.click()
    box = wait_for_patch(page, top["id"])
    assert page.evaluate("window.pathloopEditor.baseVersion") == 1
    assert set(labels_on_row(page, row, x0, x1)[inner]) == {value}
    latest = page.locator("[data-testid=version-row].current")
    expect(latest).to_have_attribute("data-version", "1")
    expect(latest).to_have_attribute("data-author", me)
    page.screenshot(path=str(tmp_path / "viewer.png"))
    if DOCS_SCREENSHOT:
        target = REPO / DOCS_SCREENSHOT
        target.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(target))

    page.get_by_test_id("undo-save").click()
    expect(page.locator("[data-testid=version-row].current")).to_have_attribute("data-version", "2")
    settle(page)
    assert labels_on_row(page, row, x0, x1) == before
    versions = site.api.get(f"/api/patches/{top['id']}/versions").json()
    assert (versions[-1]["action"], versions[-1]["reverted_to"]) == ("revert", 0)
    assert server_mask(site.api, top["id"])[row, x0:x1].tolist() == before


def test_a_conflicting_save_keeps_the_local_edit(page: Page, site: Site) -> None:
    slide = _slide(site)
    labels = [label for label in slide["labels"] if label["value"] > 0]
    top = _top_pending(site, slide["id"])
    open_viewer(page, site.viewer_url)
    open_slide(page, slide["id"])
    page.keyboard.press("n")
    box = wait_for_patch(page, top["id"])
    row, value, _ = _stroke_plan(page, box, labels)
    _choose_label(page, value)
    mid = box.mask_width // 2
    drag(page, box, (mid - 20, row), (mid + 20, row))
    assert label_at(page, mid, row) == value

    # someone else saves an all-background mask meanwhile
    size = box.mask_width * box.mask_height
    base = top["version"]  # a pending patch may have versions (a save undone back to v0)
    assert page.evaluate("window.pathloopEditor.baseVersion") == base
    theirs = site.api.post(f"/api/patches/{top['id']}/versions", json={
        "base_version": base,
        "mask": {"format": "rle", "width": box.mask_width, "height": box.mask_height,
                 "values": [0], "counts": [size]},
    })
    assert theirs.status_code == 201, theirs.text

    page.keyboard.press("Control+s")
    expect(page.get_by_test_id("conflict-banner")).to_contain_text(f"v{base + 1}")
    settle(page)
    assert page.evaluate("window.pathloopEditor.baseVersion") == base + 1
    assert label_at(page, mid, row) == 0, "their version is not shown"
    page.get_by_test_id("reapply-edit").click()
    assert label_at(page, mid, row) == value, "the local strokes were lost"
    _save(page, base + 2)
    assert server_mask(site.api, top["id"])[row, mid] == value
    versions = site.api.get(f"/api/patches/{top['id']}/versions").json()
    # Theirs was built on ours' base (version 1 has no parent), ours on theirs.
    assert [v["parent_version"] for v in versions[-2:]] == [base or None, base + 1]


def test_tools_polygon_eraser_undo_redo_and_pan(page: Page, site: Site) -> None:
    slide = _slide(site)
    labels = [label for label in slide["labels"] if label["value"] > 0]
    top = _top_pending(site, slide["id"])
    open_viewer(page, site.viewer_url)
    open_slide(page, slide["id"])
    page.keyboard.press("n")
    box = wait_for_patch(page, top["id"])
    w, h = box.mask_width, box.mask_height
    value = labels[-1]["value"]
    _choose_label(page, value, key=str(len(labels)))

    page.keyboard.press("p")
    triangle = [(w * 0.2, h * 0.2), (w * 0.6, h * 0.2), (w * 0.2, h * 0.6)]
    inside = (int(w * 0.3), int(h * 0.3))
    outside = (int(w * 0.55), int(h * 0.55))
    before_inside, before_outside = label_at(page, *inside), label_at(page, *outside)
    for vertex in triangle:
        page.mouse.click(*box.screen(*vertex))
    page.keyboard.press("Enter")
    assert label_at(page, *inside) == value
    assert label_at(page, *outside) == before_outside
    page.keyboard.press("Control+z")
    assert label_at(page, *inside) == before_inside
    page.keyboard.press("Control+Shift+z")
    assert label_at(page, *inside) == value

    page.keyboard.press("e")
    drag(page, box, (w * 0.25, h * 0.3), (w * 0.35, h * 0.3))
    assert label_at(page, *inside) == 0
    page.keyboard.press("Control+y")  # nothing to redo after a new edit
    assert label_at(page, *inside) == 0

    page.keyboard.press("]")
    expect(page.get_by_test_id("brush-size-value")).not_to_have_text("12 px")

    centre = viewport_center(page)
    page.keyboard.press("h")
    drag(page, box, (w * 0.5, h * 0.5), (w * 0.1, h * 0.5))
    settle(page)
    assert viewport_center(page)[0] > centre[0], "the pan tool did not pan"

    page.keyboard.press("?")
    expect(page.get_by_test_id("help")).to_be_visible()
    expect(page.get_by_test_id("help")).to_contain_text("Next uncertain patch")
    page.keyboard.press("Escape")
    expect(page.get_by_test_id("help")).to_be_hidden()

    # leaving a patch with unsaved edits asks first
    assert page.evaluate("window.pathloopEditor.dirty")
    page.keyboard.press("n")
    expect(page.get_by_test_id("unsaved-banner")).to_be_visible()
    assert page.evaluate("window.pathloopEditor.patchId") == top["id"]
    page.get_by_test_id("unsaved-discard").click()
    page.wait_for_function(f"![null, {top['id']}].includes(window.pathloopEditor.patchId)")


def test_a_missing_or_wrong_token_is_named(page: Page, site: Site) -> None:
    open_viewer_page = page.goto(f"{site.url}/#token=wrong-token")
    assert open_viewer_page is not None and open_viewer_page.ok
    expect(page.get_by_test_id("auth-error")).to_contain_text("token is missing or wrong")
    page.evaluate("sessionStorage.clear()")
    page.goto(f"{site.url}/")
    page.reload()
    expect(page.get_by_test_id("auth-error")).to_contain_text("token is missing or wrong")


def test_fits_a_laptop_screen_and_shows_jobs(page: Page, site: Site) -> None:
    slide = _slide(site)
    open_viewer(page, site.viewer_url)
    open_slide(page, slide["id"])
    sizes = page.evaluate("""() => ({
        scroll: [document.scrollingElement.scrollWidth, document.scrollingElement.scrollHeight],
        window: [innerWidth, innerHeight],
        sidebar: document.getElementById('sidebar').getBoundingClientRect().width,
        toolbar: document.getElementById('toolbar').getBoundingClientRect().height,
        view: document.getElementById('view').getBoundingClientRect().width,
    })""")
    assert sizes["scroll"] == sizes["window"] == [1366, 768]
    assert 280 <= sizes["sidebar"] <= 320
    assert sizes["toolbar"] < 40, "the toolbar wraps onto a second row"
    assert sizes["view"] >= 1366 - 320

    page.get_by_test_id("start-rank").click()
    job = page.locator("[data-testid=job]").first
    expect(job).to_contain_text("rank")
    expect(job).to_have_attribute("data-state", "succeeded", timeout=60_000)
