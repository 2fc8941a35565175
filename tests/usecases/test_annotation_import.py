"""`import_annotation` with outline formats: drawn at the slide's size, classes by name."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from pathloop.client.errors import InputError, MaskError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.usecases.review import ANNOTATION_RASTER, import_annotation
from pathloop.client.usecases.slides import ingest_slide


@pytest.fixture
def settings(tmp_path: Path, cmu_svs: Path) -> SiteSettings:
    (tmp_path / "annotations").mkdir()
    return SiteSettings(site_id="test-site", data_dir=tmp_path / "node",
                        slide_roots=(cmu_svs.parent, tmp_path / "annotations"))


def _square(x: float, y: float, size: float, name: str | None) -> dict[str, object]:
    ring = [[x, y], [x + size, y], [x + size, y + size], [x, y + size], [x, y]]
    properties: dict[str, object] = {"objectType": "annotation"}
    if name is not None:
        properties["classification"] = {"name": name, "color": [255, 0, 0]}
    return {"type": "Feature", "geometry": {"type": "Polygon", "coordinates": [ring]},
            "properties": properties}


def test_outlines_are_drawn_into_the_slides_annotation_raster(
        settings: SiteSettings, cmu_svs: Path, tmp_path: Path) -> None:
    # The CMU slide: 2220×2967 px at 0.499 µm/px; the site's labels background, foreground.
    path = tmp_path / "annotations" / "regions.geojson"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": [
        _square(100, 200, 400, "foreground"), _square(1600, 2400, 200, "Other"),
        _square(2100, 0, 200, None)]}))   # reaches past the right edge: clipped
    with Store.open(settings) as store:
        slide = ingest_slide(settings, store, cmu_svs).slide
        level0 = import_annotation(settings, store, slide, path)
        assert (level0.shape, level0.mpp) == ((2967, 2220), pytest.approx(0.499))
        drawn = store.rasters.open_raster(level0).read(0)
        assert drawn[200:600, 100:500].all() and drawn[2400:2600, 1600:1800].all()
        assert drawn[0:200, 2100:2220].all()
        assert int(drawn.sum()) == 400 * 400 + 200 * 200 + 200 * 120
        assert set(np.unique(drawn).tolist()) == {0, 1}
        coarse = import_annotation(settings, store, slide, path, mpp=4.0, format="geojson")
        assert coarse.version == level0.version + 1 and coarse.shape == (370, 277)
        small = store.rasters.open_raster(coarse).read(0)
        # 400 level-0 px at 0.499 µm/px are 49.9 px at 4 µm/px.
        assert 49 * 49 <= int((small[:100, :100] == 1).sum()) <= 51 * 51


def test_bad_outlines_store_nothing(settings: SiteSettings, cmu_svs: Path,
                                    tmp_path: Path) -> None:
    outside = tmp_path / "annotations" / "elsewhere.geojson"
    outside.write_text(json.dumps([_square(5000, 5000, 10, None)]))
    empty = tmp_path / "annotations" / "empty.geojson"
    empty.write_text(json.dumps({"type": "FeatureCollection", "features": []}))
    labels = tmp_path / "annotations" / "labels.png"
    from PIL import Image

    Image.fromarray(np.zeros((370, 277), np.uint8)).save(labels)
    with Store.open(settings) as store:
        slide = ingest_slide(settings, store, cmu_svs).slide
        with pytest.raises(InputError, match=r"elsewhere\.geojson: feature 1 lies outside the "
                                             r"2220×2967 px image"):
            import_annotation(settings, store, slide, outside)
        with pytest.raises(InputError, match=r"empty\.geojson: holds no instance to import"):
            import_annotation(settings, store, slide, empty)
        with pytest.raises(MaskError, match=r"labels\.png: a label image needs its resolution"):
            import_annotation(settings, store, slide, labels)
        with pytest.raises(InputError, match=r"format 'xml': one of imagescope-xml"):
            import_annotation(settings, store, slide, outside, format="xml")
        assert store.rasters.latest(slide.id, ANNOTATION_RASTER) is None
