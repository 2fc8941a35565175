"""Importing an earlier annotation of a slide: checked, stored, shown, kept."""

from __future__ import annotations

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
    good = np.zeros((740, 554), np.uint8)  # the CMU slide (2220×2967 at 0.499) at 2 µm/px
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
