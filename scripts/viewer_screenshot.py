"""The docs' screenshot of the viewer on the real CMU slide, with a real model's maps.

A tiny 5-fold nnU-Net ensemble is trained on MoNuSeg's expert nucleus masks (its training
images read at the model's 0.5 µm/px, a quarter of their 40× pixels), predicts the CMU
slide from ``../shared/data`` at about its native resolution, and its fold disagreement (UGA
uncertainty) ranks the slide's patches into a worklist. The site service then serves the
built viewer over that store, and Debian's chromium (through Playwright) opens the slide,
jumps to the most uncertain patch, paints one brush stroke on it and takes the screenshot::

    .venv/bin/python scripts/viewer_screenshot.py --workdir /tmp/viewer-shot

With ``--workdir`` the trained model is kept there (``<workdir>/training``) and reused on
the next run; the site store (``<workdir>/site``) is rebuilt each time. The model's nucleus
Dice on MoNuSeg's test images is logged, so the maps are known to be a model's output.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import numpy as np
from PIL import Image

from pathloop.client.api import TokenStore
from pathloop.client.experiments.monuseg import (
    MONUSEG_MPP,
    MonusegImage,
    list_images,
    read_nucleus_mask,
)
from pathloop.client.ranking import PatchSpec
from pathloop.client.segmentation import TINY, Case, SegmentationTask
from pathloop.client.settings import ApiSettings, FederationSettings, SiteSettings
from pathloop.client.store import ModelVersionRecord, Store
from pathloop.client.usecases.loop import dice, predict_stored_slide, rank_stored_slide
from pathloop.client.usecases.models import MODEL_KIND, load_ensemble, train_model
from pathloop.client.usecases.slides import ingest_slide, tile_slide
from pathloop.client.wsi import open_slide

if TYPE_CHECKING:
    from pathloop.client.segmentation import Ensemble

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
MONUSEG = SHARED_DATA / "nuclei" / "monuseg"
CMU_SLIDE = SHARED_DATA / "wsi" / "cmu_small_region.svs"
VIEWER_DIST = REPO / "viewer" / "dist"
DEFAULT_OUT = REPO / "docs" / "images" / "viewer-cmu.png"

NUCLEI = SegmentationTask("nuclei", {"background": 0, "nucleus": 1})
LABELS = ("background", "nucleus")
MODEL_MPP = 0.5  # the CMU slide is scanned at 0.499 µm/px: read at about native resolution
MODEL_NAME = "monuseg-tiny"
#: Short on purpose (a few minutes on 2 cores): the maps must be a model's, not a good one's.
PROFILE = TINY.with_overrides(num_epochs=10)
PATCH = PatchSpec(size=256, mpp=MODEL_MPP)  # 128 µm worklist patches
K = 10
USER = "dr-docs"

logger = logging.getLogger("viewer_screenshot")


def _load(name: str, path: Path) -> ModuleType:
    """A module of the tests by path, under a name of its own (``conftest`` is not unique)."""
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def monuseg_case(image: MonusegImage) -> Case:
    """A MoNuSeg image and its expert mask at ``MODEL_MPP``: ``(H, W, 3)``/``(H, W)`` uint8."""
    with open_slide(image.image_path, mpp=MONUSEG_MPP) as slide:
        meta = slide.metadata
        size = (round(meta.width * MONUSEG_MPP / MODEL_MPP),
                round(meta.height * MONUSEG_MPP / MODEL_MPP))
        pixels = slide.read_region(0, 0, size[0], size[1], MODEL_MPP)
        full = read_nucleus_mask(image, (meta.height, meta.width))
    # As pathloop eval uga does: nearest neighbour keeps the mask binary.
    mask = np.asarray(Image.fromarray(full).resize(size, Image.Resampling.NEAREST))
    return Case(image.stem, pixels, mask)


def trained_model(workdir: Path, images: list[MonusegImage]) -> ModelVersionRecord:
    """The ensemble trained on MoNuSeg's training images (reused when already trained)."""
    settings = SiteSettings(site_id="monuseg", data_dir=workdir / "training",
                            federation=FederationSettings(labels=LABELS))
    with Store.open(settings) as store:
        found = store.latest_model_version(MODEL_KIND, MODEL_NAME)
    if found is not None:
        logger.info("reusing model %s from %s", MODEL_NAME, found.weights_uri)
        return found
    shutil.rmtree(settings.data_dir)  # nothing, or what a run stopped mid-training left
    train = [i for i in images if i.split == "train"]
    logger.info("training %d folds × %d epochs on %d MoNuSeg images at %s µm/px",
                PROFILE.n_folds, PROFILE.num_epochs, len(train), MODEL_MPP)
    started = time.perf_counter()
    with Store.open(settings) as store:
        version = train_model(settings, store, (monuseg_case(i) for i in train), task=NUCLEI,
                              mpp=MODEL_MPP, profile=PROFILE, name=MODEL_NAME)
    logger.info("trained in %.0f s", time.perf_counter() - started)
    return version


def held_out_dice(ensemble: Ensemble, images: list[MonusegImage]) -> dict[str, float]:
    """Nucleus Dice of the fold mean's argmax on MoNuSeg's test images."""
    scores = {}
    for image in (i for i in images if i.split == "test"):
        case = monuseg_case(image)
        folds = ensemble.predict_folds(case.image[None])  # (K, 1, C, H, W)
        scores[image.stem] = round(dice(folds.mean(axis=0)[0].argmax(axis=0), case.mask), 3)
    return scores


def build_site(workdir: Path, version: ModelVersionRecord, ensemble: Ensemble
               ) -> tuple[SiteSettings, str]:
    """A fresh site store: the CMU slide ingested, tiled, predicted and ranked; a token."""
    site_dir = workdir / "site"
    if site_dir.exists():
        shutil.rmtree(site_dir)
    settings = SiteSettings(site_id="docs-site", data_dir=site_dir,
                            slide_roots=(CMU_SLIDE.parent,),
                            federation=FederationSettings(labels=LABELS, mpp=MODEL_MPP),
                            api=ApiSettings(viewer_dir=VIEWER_DIST))
    with Store.open(settings) as store:
        slide = ingest_slide(settings, store, CMU_SLIDE).slide
        tile_slide(settings, store, slide)
        received = store.add_model_version(
            name=version.name, kind=MODEL_KIND, weights_uri=version.weights_uri,
            provenance={"received_from": "monuseg", **version.provenance})
        started = time.perf_counter()
        prediction = predict_stored_slide(settings, store, slide, ensemble, received)
        logger.info("predicted %s: %d windows, %s px at %s µm/px in %.0f s", slide.name,
                    prediction.n_windows, prediction.shape, prediction.mpp,
                    time.perf_counter() - started)
        ranking = rank_stored_slide(settings, store, slide, spec=PATCH, k=K)
        logger.info("worklist: top %d of %d candidate patches, uncertainty %s", K,
                    len(ranking.scored.candidates),
                    [round(p.score_mean, 3) for p in ranking.selected])
    return settings, TokenStore.for_data_dir(settings.data_dir).add(USER)


def stroke_plan(settings: SiteSettings, item: dict[str, Any]) -> tuple[int, int, int]:
    """Where on a worklist patch a pathologist would paint nucleus: ``(row, x0, x1)`` mask px.

    The horizontal stroke (a quarter of the patch long, the brush's 12 px thick) over the
    most foreground probability the ensemble left as background: nuclei it half saw.
    """
    with Store.open(settings) as store:
        slide = store.get_slide(item["slide_id"])
        raster = store.rasters.latest(slide.id, "probability")
        assert raster is not None, "the slide has no probability raster"
        scale = slide.mpp_x / raster.mpp  # raster px per level-0 px
        x, y = round(item["x"] * scale), round(item["y"] * scale)
        w, h = item["mask_width"], item["mask_height"]
        levels = store.rasters.open_raster(raster).levels
        probability = np.asarray(levels[0][y:y + h, x:x + w], dtype=np.float32)
    missed = np.where(probability < 0.5, probability, 0.0)  # (h, w): argmax says background
    length, half = w // 4, 6
    best = (-1.0, h // 2, w // 2 - length // 2)
    for row in range(h // 8, h * 7 // 8):
        band = missed[row - half:row + half].sum(axis=0)
        sums = np.convolve(band, np.ones(length), mode="valid")  # sums[i]: columns i … i+length
        start = int(sums.argmax())
        if sums[start] > best[0]:
            best = (float(sums[start]), row, start)
    _, row, start = best
    return row, start, start + length - 1


def screenshot(settings: SiteSettings, token: str, out: Path) -> None:
    """Open the slide and its most uncertain patch in chromium, paint, take the screenshot."""
    import httpx
    from playwright.sync_api import expect, sync_playwright

    # The browser tests' helpers: the service in a thread, chromium's flags, the viewer's waits.
    sys.path[:0] = [str(REPO / "tests")]  # the tests' support package
    from support import site as site_fixture
    from support import viewer_page as page_helpers

    e2e = _load("e2e_conftest", REPO / "tests" / "e2e" / "conftest.py")

    with site_fixture.app_server(settings) as url, sync_playwright() as playwright:
        headers = {"Authorization": f"Bearer {token}"}
        with httpx.Client(base_url=url, headers=headers, timeout=30) as api:
            slide = api.get("/api/slides").json()[0]
            top = api.get("/api/worklist",
                          params={"slide_id": slide["id"], "status": "pending"}).json()[0]
            nucleus = next(label["value"] for label in api.get(
                f"/api/slides/{slide['id']}").json()["labels"] if label["name"] == "nucleus")
        row, x0, x1 = stroke_plan(settings, top)
        browser = playwright.chromium.launch(executable_path=str(e2e.CHROMIUM),
                                             args=e2e.CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport=e2e.LAPTOP)
            page_helpers.open_viewer(page, f"{url}/#token={token}")
            page_helpers.open_slide(page, slide["id"])
            expect(page.get_by_test_id("legend-uncertainty")).to_be_visible()
            page.get_by_test_id("next-patch").click()
            box = page_helpers.wait_for_patch(page, top["id"])
            page.get_by_test_id("label-select").select_option(str(nucleus))
            page_helpers.drag(page, box, (x0, row), (x1, row))
            assert page_helpers.label_at(page, (x0 + x1) // 2, row) == nucleus, "not painted"
            page_helpers.settle(page)
            out.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(out))
        finally:
            browser.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workdir", type=Path, default=None,
                        help="keeps the trained model between runs (default: a temp dir)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT,
                        help=f"the PNG to write (default: {DEFAULT_OUT.relative_to(REPO)})")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s",
                        datefmt="%H:%M:%S")
    for needed in (MONUSEG, CMU_SLIDE, VIEWER_DIST / "index.html"):
        if not needed.exists():
            sys.exit(f"missing: {needed}" + (" (run `make viewer`)" if "dist" in str(needed)
                                              else " (../shared/data beside the repository)"))
    started = time.perf_counter()
    with _workdir(args.workdir) as workdir:
        images = list_images(MONUSEG)
        version = trained_model(workdir, images)
        ensemble = load_ensemble(version)
        scores = workdir / "training" / "held-out-dice.json"
        if not scores.exists():
            scores.write_text(json.dumps(held_out_dice(ensemble, images), indent=1))
        logger.info("nucleus Dice on MoNuSeg's test images: %s", scores.read_text())
        settings, token = build_site(workdir, version, ensemble)
        screenshot(settings, token, args.out.resolve())
    logger.info("wrote %s in %.0f s", args.out, time.perf_counter() - started)


@contextmanager
def _workdir(given: Path | None) -> Iterator[Path]:
    """The given folder (created, kept) or a temporary one (removed afterwards)."""
    if given is not None:
        given.mkdir(parents=True, exist_ok=True)
        yield given.resolve()
        return
    with tempfile.TemporaryDirectory(prefix="viewer-shot-") as temp:
        yield Path(temp)


if __name__ == "__main__":
    main()
