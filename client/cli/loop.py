"""``pathloop predict`` and ``pathloop rank``: the loop's steps on stored slides."""

from __future__ import annotations

import typer
from rich.table import Table

from pathloop.client.cli.context import console, open_store, progress_bar, site_settings
from pathloop.client.cli.logs import site_command_log


def predict(
    ctx: typer.Context,
    slide: str = typer.Argument(..., help="Slide id, content-hash prefix or path."),
    model: int = typer.Option(..., "--model", help="Model version id."),
    device: str = typer.Option("cpu", "--device"),
) -> None:
    """Every fold over the slide's tissue: prediction and uncertainty rasters."""
    from pathloop.client.usecases.loop import predict_stored_slide
    from pathloop.client.usecases.models import load_ensemble
    from pathloop.client.usecases.slides import find_slide

    settings = site_settings(ctx)
    with site_command_log(ctx, "predict"), open_store(settings) as store, \
            progress_bar() as progress:
        record = find_slide(store, slide)
        version = store.get_model_version(model)
        ensemble = load_ensemble(version, device, settings.inference.precision)
        task = progress.add_task(f"predicting {record.name}", total=None)
        result = predict_stored_slide(settings, store, record, ensemble, version,
                                      progress=lambda d, t: progress.update(
                                          task, completed=d, total=t))
    console.print(f"slide {record.id}: {result.n_windows} windows, {result.shape[1]}×"
                  f"{result.shape[0]} px maps at {result.mpp} µm/px in {result.seconds:.1f} s "
                  f"({', '.join(str(k) for k in result.rasters)})", highlight=False)


def rank(
    ctx: typer.Context,
    slides: list[str] = typer.Argument(..., help="Predicted slides (id, hash or path)."),
    k: int = typer.Option(5, "--k", min=1, help="Patches per slide for the worklist."),
    strategy: str = typer.Option("uga", "--strategy", help="uga or random (the baseline)."),
    patch_size: int = typer.Option(1024, "--patch-size", help="Patch edge in pixels."),
    patch_mpp: float = typer.Option(1.0, "--patch-mpp", help="Patch resolution in µm/px."),
    seed: int = typer.Option(0, "--seed"),
) -> None:
    """Rank predicted slides' patches by uncertainty and fill the worklist."""
    from pathloop.client.ranking import PatchSpec
    from pathloop.client.usecases.loop import rank_stored_slide
    from pathloop.client.usecases.slides import find_slide

    settings = site_settings(ctx)
    spec = PatchSpec(size=patch_size, mpp=patch_mpp)
    table = Table("slide", "rank", "x", "y", "size", "mean u", "sum u")
    with open_store(settings) as store:
        for reference in slides:
            record = find_slide(store, reference)
            ranked = rank_stored_slide(settings, store, record, spec=spec, k=k,
                                       strategy=strategy, seed=seed)
            for patch in store.ranked_patches(ranked.ranking.id):
                table.add_row(record.name, str(patch.rank), str(patch.x), str(patch.y),
                              f"{patch.width}", f"{patch.score_mean:.4f}",
                              f"{patch.score_sum:.1f}")
    console.print(table)
