"""A site run with the commands of docs/site-operator.md alone, each in its own process:
``model import``, ``slides add``, ``tile``, ``annotate``, ``predict``, ``rank``,
``model train`` and ``model export``; each command's effect is read back from the store."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from support.monuseg_sites import monuseg_cases, train_model, write_tiles

from pathloop.client.experiments.monuseg import by_organ, list_images
from pathloop.client.segmentation import ModelCard
from pathloop.client.segmentation.model_card import checkpoint_path
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.usecases.models import MODEL_KIND

pytestmark = [pytest.mark.slow]


def _site_config(root: Path, site_id: str, roots: list[Path]) -> Path:
    config = root / f"{site_id}.toml"
    listed = ", ".join(f'"{r}"' for r in roots)
    config.write_text(f'site-id = "{site_id}"\ndata-dir = "{root / site_id}"\n'
                      f"slide-roots = [{listed}]\n[federation]\n"
                      'labels = ["background", "nucleus"]\n')
    return config


def _pathloop(config: Path, *args: str) -> str:
    """Run one command; its printed output (it must succeed)."""
    done = subprocess.run([sys.executable, "-m", "pathloop.client", "--config", str(config),
                           *args], capture_output=True, text=True, timeout=900, check=False,
                          env={**os.environ, "COLUMNS": "200"})
    assert done.returncode == 0, f"{args}: {done.stdout}{done.stderr}"
    return done.stdout


def _weights(model_dir: Path, fold: int) -> dict[str, torch.Tensor]:
    weights: dict[str, torch.Tensor] = torch.load(
        checkpoint_path(model_dir, fold), map_location="cpu",
        weights_only=True)["network_weights"]
    return weights


def test_a_site_run_with_the_cli_alone(shared_data: Path, cmu_svs: Path,
                                       tmp_path: Path) -> None:
    groups = by_organ(list_images(shared_data / "nuclei" / "monuseg"))
    shipped = train_model(monuseg_cases(groups["lung"][:2], "i"), tmp_path / "initial")
    images, masks = write_tiles(monuseg_cases(groups["breast"][:2], "t"), tmp_path / "tiles")
    annotations = tmp_path / "annotations"
    annotations.mkdir()
    config = _site_config(tmp_path, "site-cli", [cmu_svs.parent, annotations])
    settings = SiteSettings.from_file(config)

    imported = _pathloop(config, "model", "import", str(shipped), "--name", "initial")
    assert "model version 1 initial at" in imported

    added = _pathloop(config, "slides", "add", str(cmu_svs))
    assert "slide 1 cmu_small_region.svs" in added
    tiled = _pathloop(config, "tile", "1")
    with Store.open(settings) as store:
        slide = store.get_slide(1)
        assert (slide.width, slide.height) == (2220, 2967)
        tiling = store.latest_tiling(1)
        assert tiling is not None and tiling.n_tiles > 0
        assert f"{tiling.n_tiles} tissue tiles" in tiled

    # An annotation at 4 µm/px (the slide's size there, ±1 px), labels 0 and 1.
    rows, cols = np.mgrid[:370, :277]
    drawn = ((rows // 20 + cols // 20) % 2).astype(np.uint8)
    Image.fromarray(drawn).save(annotations / "earlier.png")
    annotated = _pathloop(config, "annotate", "1", str(annotations / "earlier.png"),
                          "--mpp", "4.0")
    assert "annotation 277×370 px at 4.0 µm/px stored (version 1)" in annotated
    with Store.open(settings) as store:
        raster = store.rasters.latest(1, "annotation")
        assert raster is not None
        np.testing.assert_array_equal(store.rasters.open_raster(raster).read(0), drawn)

    predicted = _pathloop(config, "predict", "1", "--model", "1")
    assert "slide 1:" in predicted and "windows" in predicted
    with Store.open(settings) as store:
        for kind in ("prediction", "uncertainty"):
            raster = store.rasters.latest(1, kind)
            assert raster is not None and raster.model_version_id == 1, kind

    ranked = _pathloop(config, "rank", "1", "--k", "3", "--patch-size", "256",
                       "--patch-mpp", "1.0")
    with Store.open(settings) as store:
        ranking = store.latest_ranking(1)
        assert ranking is not None
        patches = store.ranked_patches(ranking.id)
    assert [p.rank for p in patches] == [1, 2, 3]
    assert [p.score_mean for p in patches] == sorted((p.score_mean for p in patches),
                                                     reverse=True)
    for patch in patches:  # the printed table lists what was stored
        assert f"{patch.x}" in ranked and f"{patch.score_mean:.4f}" in ranked

    trained = _pathloop(config, "model", "train", "--name", "fine-tuned", "--parent", "1",
                        "--epochs", "1", "--images", str(images), "--masks", str(masks))
    assert "on 4 tiles (0 corrections)" in trained and "2 folds" in trained
    with Store.open(settings) as store:
        version = store.latest_model_version(MODEL_KIND)
        parent = store.get_model_version(1)
    assert version is not None and (version.id, version.name, version.parent_id) == (
        2, "fine-tuned", 1)
    assert version.provenance["training_cases"] == 4
    assert f"model version 2 fine-tuned at {version.weights_uri}" in trained
    card = ModelCard.read(version.weights_uri)
    assert card.parent is not None
    assert card.parent["path"] == str(Path(parent.weights_uri).resolve())
    assert card.task == ModelCard.read(shipped).task and card.profile["num_epochs"] == 1

    exported = _pathloop(config, "model", "export", "2", str(tmp_path / "shipped-2"))
    assert "exported model version 2" in exported
    other = _site_config(tmp_path, "site-other", [cmu_svs.parent])
    assert "model version 1 from-site-cli at" in _pathloop(
        other, "model", "import", str(tmp_path / "shipped-2"), "--name", "from-site-cli")
    with Store.open(SiteSettings.from_file(other)) as store:
        received = store.latest_model_version(MODEL_KIND)
    assert received is not None and received.weights_uri is not None
    for fold in range(card.n_folds):  # the other site got exactly the trained weights
        ours, theirs = _weights(Path(version.weights_uri), fold), _weights(
            Path(received.weights_uri), fold)
        assert ours.keys() == theirs.keys()
        assert all(torch.equal(ours[name], theirs[name]) for name in ours)

    # Nothing the site wrote is open to another user of the machine.
    data = tmp_path / "site-cli"
    written = [data, *data.rglob("*")]
    assert len(written) > 50
    loose = [f"{oct(p.stat().st_mode & 0o777)} {p}" for p in written
             if p.stat().st_mode & 0o077]
    assert not loose, loose[:5]
