"""``pathloop quality inspect`` on an image folder with a (random) instance model folder:
the run is stored and its items printed most suspect first; bad choices are one line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

from pathloop.client.quality.instances import INSTANCE_TASK
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store


def _run(config: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pathloop.client", "--config", str(config),
                           *args], capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "COLUMNS": "200"})


def test_inspect_an_image_folder(tmp_path: Path) -> None:
    from support.nnunet import random_model_folder

    images = tmp_path / "images"
    images.mkdir()
    for index in (1, 2, 3):
        labels = np.zeros((48, 48), dtype=np.int32)
        labels[8:20, 8:20] = 1
        labels[28:40, 20 + index:36] = 2
        pixels = np.full((48, 48, 3), 230, dtype=np.uint8)
        pixels[labels > 0] = (70, 40, 110)
        Image.fromarray(pixels).save(images / f"im{index}.png")
        np.save(images / f"im{index}_mask.npy", labels)
    random_model_folder(tmp_path / "model", INSTANCE_TASK, n_folds=1, mpp=0.5)
    config = tmp_path / "site.toml"
    config.write_text(f'site-id = "cli"\ndata-dir = "{tmp_path / "site"}"\n'
                      f'slide-roots = ["{images}"]\n')
    done = _run(config, "quality", "inspect", "--images", str(images), "--mpp", "0.5",
                "--model", str(tmp_path / "model"), "--alpha", "0.3", "--name", "cli run")
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 item(s) stored as inspection 1" in done.stdout
    assert "at α = 0.3" in done.stdout
    with Store.open(SiteSettings.from_file(config)) as store:
        run = store.get_inspection(1)
        assert (run.name, run.alpha, run.n_items) == ("cli run", 0.3, 3)
    printed = [line.split("│")[2].strip() for line in done.stdout.splitlines()
               if line.count("│") > 3 and "im" in line]
    assert sorted(printed) == ["im1.png", "im2.png", "im3.png"]

    both = _run(config, "quality", "inspect", "--images", str(images), "--mpp", "0.5",
                "--model", str(tmp_path / "model"), "--train", str(tmp_path / "new"))
    assert both.returncode == 1
    assert both.stderr.strip().splitlines()[-1] == (
        "error: give --model DIR or --train NEW_DIR (one of them)")
    no_mpp = _run(config, "quality", "inspect", "--images", str(images),
                  "--model", str(tmp_path / "model"))
    assert no_mpp.returncode == 1 and "--images needs --mpp" in no_mpp.stderr
