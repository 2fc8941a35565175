"""``pathloop quality``: annotation quality — simulated noise (and AI²Seg's inspection)."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import typer

from pathloop.client.cli.context import console, progress_bar
from pathloop.client.errors import InputError

app = typer.Typer(help="Annotation quality: simulate noise, inspect annotations.",
                  no_args_is_help=True)


@app.command("noise")
def noise(
    labels_in: Path = typer.Argument(..., help="Clean annotation file (a label image .png/"
                                               ".tif/.npy/.npz, or any format `pathloop "
                                               "annotate` reads), or a folder of them."),
    kind: str = typer.Option(..., "--type", "-t",
                             help="Noise type: oversized, undersized, contour, merged, split, "
                                  "jitter, holes, approximation or forgotten."),
    beta: float = typer.Option(..., "--beta", "-b", min=0.0, max=1.0,
                               help="Ratio of affected instances, in [0, 1]."),
    seed: int = typer.Option(0, "--seed", "-s",
                             help="Random seed (a folder's n-th file, sorted, gets seed + n)."),
    out: Path = typer.Option(..., "--out", "-o",
                             help="Noisy label array (.npy/.npz/.png/.tif); for a folder, a "
                                  "folder that gets one per file."),
    suffix: str = typer.Option(".npy", "--suffix",
                               help="Folder mode: the noisy files' suffix."),
) -> None:
    """Simulate one noise type on a clean annotation; write the noisy labels and, beside them
    (<out>.noise.json), the noise type, β, seed and which instances are noisy."""
    from pathloop.client.quality import NOISE_TYPES, simulate_noise
    from pathloop.client.quality.noise_files import read_clean_labels, write_noisy

    if kind not in NOISE_TYPES:
        raise InputError(f"--type {kind!r}: one of {', '.join(NOISE_TYPES)}")
    if labels_in.is_dir():
        sources = sorted(p for p in labels_in.iterdir() if p.is_file()
                         and not p.name.startswith("."))
        if not sources:
            raise InputError(f"{labels_in}: no annotation files in this folder")
        if out.exists() and not out.is_dir():
            raise InputError(f"{out}: not a folder (the input is a folder)")
        targets = [(source, out / f"{source.stem}{suffix}", seed + n)
                   for n, source in enumerate(sources)]
    else:
        targets = [(labels_in, out, seed)]
    with progress_bar() if len(targets) > 1 else nullcontext() as progress:
        task = progress.add_task(f"{kind} noise, β = {beta}", total=len(targets)) \
            if progress else None
        for source, target, file_seed in targets:
            noisy = simulate_noise(read_clean_labels(source), kind, beta, seed=file_seed)
            labels_path, truth_path = write_noisy(noisy, target, source=source)
            console.print(f"{source.name}: {len(noisy.affected_clean)} clean instances "
                          f"affected, {len(noisy.noisy_labels)} noisy ids → {labels_path} "
                          f"(truth: {truth_path.name})", highlight=False)
            if progress and task is not None:
                progress.advance(task)
