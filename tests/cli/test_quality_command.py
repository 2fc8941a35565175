"""``pathloop quality noise``: noisy labels and their truth from a file or a folder."""

from __future__ import annotations

import json
import stat
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from pathloop.client.cli.app import app
from pathloop.client.quality import affected_count, simulate_noise


def _discs(n: int = 6, radius: int = 5, step: int = 16) -> np.ndarray:
    labels = np.zeros((n * step, n * step), np.int32)
    rows, cols = np.mgrid[: n * step, : n * step]
    for k in range(n * n):
        cy, cx = (k // n) * step + step // 2, (k % n) * step + step // 2
        labels[(rows - cy) ** 2 + (cols - cx) ** 2 <= radius**2] = k + 1
    return labels


def _pathloop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pathloop.client", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_noise_writes_the_noisy_labels_and_the_truth(tmp_path: Path) -> None:
    clean = _discs()
    source = tmp_path / "clean.png"
    Image.fromarray(clean.astype(np.uint8)).save(source)
    out = tmp_path / "noisy" / "image.npy"
    done = CliRunner().invoke(app, ["quality", "noise", str(source), "--type", "forgotten",
                                    "--beta", "0.25", "--seed", "7", "--out", str(out)])
    assert done.exit_code == 0, done.output
    expected = simulate_noise(clean, "forgotten", 0.25, seed=7)
    assert np.array_equal(np.load(out), expected.labels)
    truth = json.loads((tmp_path / "noisy" / "image.noise.json").read_text())
    assert truth["kind"] == "forgotten" and truth["beta"] == 0.25 and truth["seed"] == 7
    assert truth["affected_clean"] == sorted(expected.affected_clean)
    assert len(truth["affected_clean"]) == affected_count(0.25, 36) == 9
    assert stat.S_IMODE(out.stat().st_mode) == 0o600
    # Run again: the files exist, nothing is overwritten.
    before = out.read_bytes()
    again = _pathloop("quality", "noise", str(source), "--type", "split", "--beta", "0.5",
                      "--out", str(out))
    assert again.returncode == 1
    assert again.stderr == (f"error: {out}: already exists; nothing was written (remove it "
                            "or choose another output)\n")
    assert out.read_bytes() == before


def test_noise_over_a_folder_seeds_each_file(tmp_path: Path) -> None:
    clean = _discs()
    folder = tmp_path / "clean"
    folder.mkdir()
    for name in ("a", "b"):
        np.save(folder / f"{name}.npy", clean)
    out = tmp_path / "noisy"
    done = CliRunner().invoke(app, ["quality", "noise", str(folder), "--type", "merged",
                                    "--beta", "0.5", "--seed", "3", "--out", str(out),
                                    "--suffix", ".png"])
    assert done.exit_code == 0, done.output
    for n, name in enumerate(("a", "b")):
        expected = simulate_noise(clean, "merged", 0.5, seed=3 + n)
        assert np.array_equal(np.asarray(Image.open(out / f"{name}.png")), expected.labels)
        truth = json.loads((out / f"{name}.noise.json").read_text())
        assert truth["seed"] == 3 + n and truth["noisy_labels"] == sorted(expected.noisy_labels)


def test_an_unknown_type_is_refused_by_name(tmp_path: Path) -> None:
    source = tmp_path / "clean.npy"
    np.save(source, _discs())
    done = _pathloop("quality", "noise", str(source), "--type", "smudged", "--beta", "0.1",
                     "--out", str(tmp_path / "n.npy"))
    assert done.returncode == 1
    assert done.stderr.startswith("error: --type 'smudged': one of oversized, undersized,")
    assert not (tmp_path / "n.npy").exists()
