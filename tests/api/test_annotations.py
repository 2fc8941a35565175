"""Importing an earlier annotation of a slide: checked, stored, shown, kept."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from pathloop.client.api import create_app
from pathloop.client.errors import MaskError, PathOutsideRootsError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.usecases.review import import_annotation


def test_an_annotation_is_imported_and_kept(site: tuple[SiteSettings, str],
                                            tmp_path: Path) -> None:
    base, token = site
    settings = base.model_copy(update={"slide_roots": (*base.slide_roots, tmp_path)})
    rows, cols = np.mgrid[:740, :554]  # the CMU slide (2220×2967 at 0.499) at 2 µm/px
    good = ((rows // 9 + cols // 7) % 2).astype(np.uint8)  # blocks no patch can miss
    good[300:500, 100:300] = 1
    Image.fromarray(good).save(tmp_path / "annotation.png")
    Image.fromarray(good * 200).save(tmp_path / "wrong-labels.png")
    Image.fromarray(good[:500]).save(tmp_path / "wrong-size.png")
    Image.new("RGB", (554, 740)).save(tmp_path / "rgb.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    with Store.open(settings) as store:
        slide = store.get_slide(1)
        for name, message in (("wrong-labels.png", "holds label 200 but the site has 2"),
                              ("wrong-size.png", "554×500 px, but slide 1 at 2.0 µm/px is "
                                                 "554×740"),
                              ("rgb.png", "got mode RGB"), ("broken.png", "not a readable")):
            with pytest.raises(MaskError, match=message):
                import_annotation(settings, store, slide, tmp_path / name, mpp=2.0)
        with pytest.raises(PathOutsideRootsError):
            import_annotation(settings, store, slide, Path("/etc/hostname"), mpp=2.0)
        before = store.rasters.latest(1, "annotation")
        record = import_annotation(settings, store, slide, tmp_path / "annotation.png",
                                   mpp=2.0)
        assert before is not None and record.version == before.version + 1
        np.testing.assert_array_equal(store.rasters.open_raster(record).read(0), good)
    with TestClient(create_app(settings, viewer_dir=Path("/nonexistent")),
                    headers={"Authorization": f"Bearer {token}"}) as client:
        patch = client.get("/api/worklist", params={"status": "pending"}).json()[-1]
        kept = client.post(f"/api/patches/{patch['id']}/keep-annotation",
                           json={"base_version": patch["version"]})
        assert kept.status_code == 201, kept.text
        annotation = client.get(f"/api/patches/{patch['id']}/mask",
                                params={"source": "annotation"})
        latest = client.get(f"/api/patches/{patch['id']}/mask")
        assert annotation.content == latest.content
    # The kept mask is the imported image under the patch, sampled at the mask's pixel
    # centres (computed here from the patch's box alone).
    kept_mask = np.asarray(Image.open(io.BytesIO(latest.content)))
    assert kept_mask.shape == (patch["mask_height"], patch["mask_width"])
    per_annotation_px = 2.0 / slide.mpp_x  # level-0 px per annotation px
    ys = patch["y"] + (np.arange(patch["mask_height"]) + 0.5) * patch["height"] / \
        patch["mask_height"]
    xs = patch["x"] + (np.arange(patch["mask_width"]) + 0.5) * patch["width"] / \
        patch["mask_width"]
    expected = good[np.ix_(np.floor(ys / per_annotation_px).astype(int),
                           np.floor(xs / per_annotation_px).astype(int))]
    np.testing.assert_array_equal(kept_mask, expected)
    assert 0 < kept_mask.mean() < 1  # both labels under the patch: the comparison can fail
