"""``pathloop quality``: annotation quality — simulated noise and AI²Seg's inspection."""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

import typer
from rich.table import Table

from pathloop.client.cli.context import console, open_store, progress_bar, site_settings
from pathloop.client.cli.logs import site_command_log
from pathloop.client.errors import InputError

app = typer.Typer(help="Annotation quality: simulate noise, inspect annotations.",
                  no_args_is_help=True)

TOP = 10
"""Items printed after a run, most suspect first."""


@app.command("inspect")
def inspect(
    ctx: typer.Context,
    images: Path | None = typer.Option(None, "--images", help="Folder of images (PNG, "
                                       "JPEG, TIFF) inside the slide roots."),
    annotations: Path | None = typer.Option(
        None, "--annotations", help="Folder of the images' annotation files (default: the "
                                    "images' folder); one per image, named <image>[_…].<ext>."),
    annotation_format: str | None = typer.Option(
        None, "--format", help="Annotation format (default: told from each file)."),
    mpp: float | None = typer.Option(None, "--mpp", help="µm/px of the images (plain images "
                                                         "record none)."),
    slide: str | None = typer.Option(None, "--slide", help="A stored slide (id, hash prefix "
                                                           "or path) whose regions to inspect."),
    regions: Path | None = typer.Option(None, "--regions", help="The slide's annotation file: "
                                        "region outlines and the nuclei inside them."),
    model_dir: Path | None = typer.Option(None, "--model", help="A trained instance model "
                                                               "folder."),
    train: Path | None = typer.Option(None, "--train", help="Train an instance model on these "
                                      "annotations first, into this new folder."),
    profile: str = typer.Option("tiny", "--profile", help="Training profile with --train."),
    epochs: int | None = typer.Option(None, "--epochs", min=1, help="Epochs with --train."),
    alpha: float = typer.Option(0.0, "--alpha", min=0.0, max=1.0,
                                help="Uncertainty weighting α in [0, 1]."),
    gamma: float = typer.Option(0.0, "--gamma", min=0.0, max=1.0,
                                help="Size scaling γ in [0, 1]."),
    name: str | None = typer.Option(None, "--name", help="The run's name."),
) -> None:
    """Inspect annotations (AI²Seg): images or a slide's regions, ranked most suspect first."""
    from pathloop.client.segmentation import get_profile
    from pathloop.client.usecases.quality import (
        InstanceModel,
        inspect_image_set,
        inspect_slide_regions,
        rescore,
    )
    from pathloop.client.usecases.slides import find_slide

    if (images is None) == (slide is None):
        raise InputError("give --images DIR or --slide ID --regions FILE (one of them)")
    if (model_dir is None) == (train is None):
        raise InputError("give --model DIR or --train NEW_DIR (one of them)")
    settings = site_settings(ctx)
    chosen = None
    if train is not None:
        chosen = get_profile(profile)
        if epochs is not None:
            chosen = chosen.with_overrides(num_epochs=epochs)
    model = InstanceModel(model_dir=model_dir, profile=chosen, train_dir=train,
                          device=settings.federation.device)
    with site_command_log(ctx, "quality-inspect"), open_store(settings) as store, \
            progress_bar() as bar:
        tasks: dict[str, object] = {}

        def progress(stage: str, done: int, total: int) -> None:
            if stage not in tasks:
                tasks[stage] = bar.add_task(stage, total=total)
            bar.update(tasks[stage], completed=done, total=total)  # type: ignore[arg-type]

        if images is not None:
            if mpp is None:
                raise InputError("--images needs --mpp: plain images record no resolution")
            run = inspect_image_set(settings, store, images, mpp=mpp, model=model,
                                    annotations=annotations,
                                    annotation_format=annotation_format, alpha=alpha,
                                    gamma=gamma, name=name, author="cli", progress=progress)
        else:
            if regions is None:
                raise InputError("--slide needs --regions FILE")
            assert slide is not None
            record = find_slide(store, slide)
            run = inspect_slide_regions(settings, store, record, regions, model=model,
                                        annotation_format=annotation_format, alpha=alpha,
                                        gamma=gamma, name=name, author="cli",
                                        progress=progress)
        items = rescore(store, run.id)
    table = Table("rank", "item", "overall", "suspect", "instances", "item id",
                  title=f"inspection {run.id} ({run.name}) at α = {alpha}, γ = {gamma}")
    for rank, item in enumerate(items[:TOP], start=1):
        table.add_row(str(rank), item.item.name, f"{item.overall:.3f}", str(item.n_suspect),
                      str(len(item.instances)), str(item.item.id))
    console.print(table)
    console.print(f"{len(items)} item(s) stored as inspection {run.id}; review them in the "
                  "viewer's inspection mode", highlight=False)


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
