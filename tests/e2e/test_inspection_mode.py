"""The inspection mode in a real browser, over a real store holding a small inspection run
(``support.inspections``: two images whose order flips between α = 0 and α = 1): it opens on
the top-ranked image with red and green instances, α re-orders the items, a decision is
stored as a new correction version, and an API refusal reaches the status line.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from support.viewer_page import Site, open_viewer

from pathloop.client.settings import SiteSettings

pytestmark = [pytest.mark.e2e, pytest.mark.slow]

USER = "dr-inspect"
# The combined view's colours (client/viewing/inspection_views.py).
CONSISTENT = (57, 231, 95)
SUSPECT = (255, 45, 45)
SELECTED = (255, 255, 255)
VIEWER_DIST = Path(__file__).resolve().parents[2] / "viewer" / "dist"


@dataclass(frozen=True)
class InspectionSite:
    """A running site with one stored inspection run."""

    site: Site
    settings: SiteSettings
    inspection_id: int


@pytest.fixture(scope="module")
def inspection_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[InspectionSite]:
    if not (VIEWER_DIST / "index.html").exists():
        pytest.skip(f"the viewer is not built ({VIEWER_DIST}): run `make viewer`")
    from support.inspections import fill_inspection
    from support.site import app_server

    from pathloop.client.api import TokenStore
    from pathloop.client.settings import FederationSettings
    from pathloop.client.store import Store

    root = tmp_path_factory.mktemp("inspection-site")
    images = root / "images"
    images.mkdir()
    settings = SiteSettings(site_id="test-site", data_dir=root / "site", slide_roots=(images,),
                            federation=FederationSettings(labels=("background", "nucleus")))
    with Store.open(settings) as store:
        run = fill_inspection(settings, store, images)
    token = TokenStore.for_data_dir(settings.data_dir).add(USER, "pathologist")
    with app_server(settings) as url:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as api:
            yield InspectionSite(Site(url=url, token=token, api=api), settings, run.id)


def _items(site: InspectionSite, **weights: float) -> list[dict]:
    response = site.site.api.get(f"/api/inspections/{site.inspection_id}/items", params=weights)
    response.raise_for_status()
    return list(response.json())


def _detail(site: InspectionSite, item_id: int) -> dict:
    response = site.site.api.get(f"/api/inspections/{site.inspection_id}/items/{item_id}")
    response.raise_for_status()
    return dict(response.json())


def _settled(page: Page) -> None:
    expect(page.locator("body")).to_have_attribute("data-busy", "0")


def _open_inspection(page: Page, site: InspectionSite) -> None:
    """The viewer, switched to the inspection mode with its button."""
    open_viewer(page, site.site.viewer_url)
    page.get_by_test_id("mode-inspection").click()
    expect(page.get_by_test_id("inspection-views")).to_be_visible()
    _settled(page)


def _listed(page: Page) -> list[int]:
    return [int(row.get_attribute("data-item-id") or 0)
            for row in page.get_by_test_id("inspection-item").all()]


def _colour_counts(page: Page, view: str) -> dict[str, int]:
    """How many pixels of a shown view are exactly each overlay colour (the PNG as drawn)."""
    return dict(page.evaluate(
        """([view, colours]) => {
          const image = document.querySelector(`[data-testid=view-${view}]`);
          const canvas = document.createElement("canvas");
          canvas.width = image.naturalWidth;
          canvas.height = image.naturalHeight;
          const context = canvas.getContext("2d");
          context.drawImage(image, 0, 0);
          const data = context.getImageData(0, 0, canvas.width, canvas.height).data;
          const counts = Object.fromEntries(Object.keys(colours).map((name) => [name, 0]));
          for (let i = 0; i < data.length; i += 4) {
            for (const [name, [r, g, b]] of Object.entries(colours)) {
              if (data[i] === r && data[i + 1] === g && data[i + 2] === b) counts[name]++;
            }
          }
          return counts;
        }""",
        [view, {"consistent": CONSISTENT, "suspect": SUSPECT, "selected": SELECTED}]))


def test_opens_on_the_top_ranked_image_with_red_and_green_instances(
        page: Page, inspection_site: InspectionSite) -> None:
    top = _items(inspection_site)[0]
    _open_inspection(page, inspection_site)

    expect(page.locator("body")).to_have_attribute("data-inspection-item", str(top["id"]))
    first = page.get_by_test_id("inspection-item").first
    expect(first).to_have_attribute("data-item-id", str(top["id"]))
    expect(first).to_have_class("inspection-item current")
    expect(first.get_by_test_id("item-score")).to_have_text(f"{top['overall']:.3f}")
    assert f"item={top['id']}" in page.evaluate("location.hash")

    # The instance list is the item's, with both suspect and consistent instances.
    instances = _detail(inspection_site, top["id"])["instances"]
    rows = page.get_by_test_id("inspection-instance")
    expect(rows).to_have_count(len(instances))
    shown = {int(row.get_attribute("data-number") or 0): row.get_attribute("data-suspect")
             for row in rows.all()}
    assert shown == {i["number"]: str(i["suspect"]).lower() for i in instances}
    assert set(shown.values()) == {"true", "false"}, "the fixture's top image has both kinds"

    # The combined view draws them red and green; nothing is white before a selection.
    combined = page.get_by_test_id("view-combined")
    expect(combined).to_have_attribute("data-shows", f"{top['id']}:0:0:")
    counts = _colour_counts(page, "combined")
    assert counts["suspect"] > 0 and counts["consistent"] > 0, counts
    assert counts["selected"] == 0, counts

    # Clicking a suspect instance turns it white in the combined view.
    suspect = page.locator("[data-testid=inspection-instance][data-suspect=true]").first
    number = suspect.get_attribute("data-number")
    suspect.click()
    expect(suspect).to_have_class("inspection-instance suspect current")
    expect(combined).to_have_attribute("data-shows", f"{top['id']}:0:0:{number}")
    _settled(page)
    assert _colour_counts(page, "combined")["selected"] > 0
    assert f"instance={number}" in page.evaluate("location.hash")


def test_alpha_reorders_the_items_and_the_address_keeps_it(
        page: Page, inspection_site: InspectionSite) -> None:
    at_zero = [item["id"] for item in _items(inspection_site, alpha=0.0, gamma=0.0)]
    at_one = [item["id"] for item in _items(inspection_site, alpha=1.0, gamma=0.0)]
    assert at_zero != at_one, "the fixture's images must swap places between α = 0 and 1"

    _open_inspection(page, inspection_site)
    assert _listed(page) == at_zero
    page.get_by_test_id("alpha").fill("1")
    expect(page.get_by_test_id("alpha-value")).to_have_text("1.00")
    _settled(page)
    assert _listed(page) == at_one
    # The open item stays open, re-scored: its views are asked again at α = 1.
    opened = page.locator("body").get_attribute("data-inspection-item")
    expect(page.get_by_test_id("view-annotation")).to_have_attribute("data-shows", f"{opened}:1:0:")
    assert "alpha=1" in page.evaluate("location.hash")

    # A reload (the token now in sessionStorage) opens the same place at the same α.
    page.reload()
    expect(page.locator("body")).to_have_attribute("data-ready", "true")
    _settled(page)
    expect(page.get_by_test_id("alpha-value")).to_have_text("1.00")
    assert _listed(page) == at_one
    expect(page.locator("body")).to_have_attribute("data-inspection-item", str(opened))


def test_accept_prediction_is_stored_as_a_new_correction_version(
        page: Page, inspection_site: InspectionSite) -> None:
    from pathloop.client.store import PatchBox, Store

    _open_inspection(page, inspection_site)
    item_id = int(page.locator("body").get_attribute("data-inspection-item") or 0)
    before = _detail(inspection_site, item_id)
    box = PatchBox(before["slide_id"], before["box"]["x"], before["box"]["y"],
                   before["box"]["width"], before["box"]["height"], before["mpp"])
    with Store.open(inspection_site.settings) as store:
        history = store.correction_history(box)
    assert len(history) == before["version"]

    page.get_by_test_id("item-accept-prediction").click()
    _settled(page)
    version = before["version"] + 1
    expect(page.get_by_test_id("status")).to_contain_text(f"stored as version v{version}")
    expect(page.get_by_test_id("status")).to_have_attribute("data-level", "ok")

    after = _detail(inspection_site, item_id)
    assert (after["version"], after["decision"]) == (version, "accept-prediction")
    with Store.open(inspection_site.settings) as store:
        history = store.correction_history(box)
    assert [v.version for v in history] == list(range(1, version + 1))
    stored = history[-1]
    assert stored.author == USER
    assert stored.data["decision"] == "accept-prediction"
    assert stored.data["item_id"] == item_id and stored.data["instance"] is None
    assert stored.raster_id is not None
    expect(page.get_by_test_id("inspection-item-info")).to_contain_text(f"v{version}")


def test_keys_decide_for_the_selected_instance(
        page: Page, inspection_site: InspectionSite) -> None:
    from pathloop.client.store import PatchBox, Store

    _open_inspection(page, inspection_site)
    item_id = int(page.locator("body").get_attribute("data-inspection-item") or 0)
    before = _detail(inspection_site, item_id)
    page.keyboard.press("]")  # the most suspect instance, listed first
    first = page.get_by_test_id("inspection-instance").first
    expect(first).to_have_class("inspection-instance suspect current")
    number = int(first.get_attribute("data-number") or 0)
    _settled(page)
    page.keyboard.press("a")
    _settled(page)
    version = before["version"] + 1
    expect(page.get_by_test_id("status")).to_contain_text(
        f"accept-prediction for instance {number} of {before['name']}: "
        f"stored as version v{version}")

    box = PatchBox(before["slide_id"], before["box"]["x"], before["box"]["y"],
                   before["box"]["width"], before["box"]["height"], before["mpp"])
    with Store.open(inspection_site.settings) as store:
        stored = store.correction_history(box)[-1]
    assert stored.version == version
    assert (stored.data["decision"], stored.data["instance"]) == ("accept-prediction", number)
    decided = {i["number"]: i["decision"] for i in _detail(inspection_site, item_id)["instances"]}
    assert decided[number] == "accept-prediction"


def test_a_stale_decision_shows_the_servers_refusal(
        page: Page, inspection_site: InspectionSite) -> None:
    _open_inspection(page, inspection_site)
    item_id = int(page.locator("body").get_attribute("data-inspection-item") or 0)
    version = _detail(inspection_site, item_id)["version"]
    # Meanwhile the same item is decided elsewhere: the page's base version is stale.
    response = inspection_site.site.api.post(
        f"/api/inspections/{inspection_site.inspection_id}/items/{item_id}/decisions",
        json={"decision": "keep-annotation", "instance": None, "base_version": version})
    assert response.status_code == 201, response.text

    page.keyboard.press("Shift+K")
    _settled(page)
    status = page.get_by_test_id("status")
    expect(status).to_have_attribute("data-level", "error")
    expect(status).to_contain_text("Cannot store keep-annotation")
    expect(status).to_contain_text("reload the page")
    assert _detail(inspection_site, item_id)["version"] == version + 1
