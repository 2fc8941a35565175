"""``pathloop quality``: annotation-quality tasks (AI²Seg inspection)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from pathloop.client.cli.context import console, open_store, progress_bar, site_settings
from pathloop.client.cli.logs import site_command_log
from pathloop.client.errors import InputError

app = typer.Typer(help="Annotation quality: inspect annotations against an instance model.",
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
