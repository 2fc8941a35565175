"""``pathloop slides add|list|info``, ``pathloop tile`` and ``pathloop annotate``."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from pathloop.client.cli.context import (
    console,
    open_store,
    print_error,
    progress_bar,
    site_settings,
)
from pathloop.client.cli.logs import site_command_log
from pathloop.client.errors import PathloopError

app = typer.Typer(help="Add, list and inspect slides.", no_args_is_help=True)


@app.command("add")
def slides_add(
    ctx: typer.Context,
    paths: list[Path] = typer.Argument(..., help="Slide files to add."),
    site: str | None = typer.Option(None, "--site", "-s", help="Site id (default: config)."),
    mpp: float | None = typer.Option(None, "--mpp", help="µm/px for slides that record none."),
) -> None:
    """Validate slides and record them in the site's store."""
    from pathloop.client.usecases.slides import ingest_slide

    settings = site_settings(ctx)
    failed = 0
    with open_store(settings) as store:
        for path in paths:
            try:
                result = ingest_slide(settings, store, path, site_id=site, mpp=mpp)
            except PathloopError as error:
                print_error(error)
                failed += 1
                continue
            verb = "added" if result.created else "already present"
            console.print(f"{verb}: slide {result.slide.id} {result.slide.name} "
                          f"({result.slide.width}×{result.slide.height}, "
                          f"{result.slide.mpp_x:.3f} µm/px, site {result.slide.site_id})",
                          highlight=False)
    if failed:
        raise typer.Exit(1)


@app.command("list")
def slides_list(ctx: typer.Context,
                site: str | None = typer.Option(None, "--site", "-s")) -> None:
    """List the slides in the store."""
    settings = site_settings(ctx)
    with open_store(settings) as store:
        records = store.list_slides(site)
    table = Table("id", "site", "name", "size", "µm/px", "vendor", "hash")
    for s in records:
        table.add_row(str(s.id), s.site_id, s.name, f"{s.width}×{s.height}",
                      f"{s.mpp_x:.3f}", s.vendor or "", s.content_hash[:12])
    console.print(table)
    console.print(f"{len(records)} slide(s)")


@app.command("info")
def slides_info(
    ctx: typer.Context,
    path: Path = typer.Argument(..., help="A slide file inside the slide roots."),
    mpp: float | None = typer.Option(None, "--mpp", help="µm/px for slides that record none."),
) -> None:
    """Show a slide file's metadata (nothing is stored)."""
    from pathloop.client.usecases.slides import describe_slide

    meta = describe_slide(site_settings(ctx), path, mpp=mpp)
    table = Table("field", "value", show_header=False)
    for key, value in meta.summary().items():
        table.add_row(key, str(value))
    console.print(table)


def tile(
    ctx: typer.Context,
    slide: str = typer.Argument(..., help="Slide id, content-hash prefix or path."),
    mpp: float | None = typer.Option(None, "--mpp", help="Tile resolution in µm/px."),
    tile_size: int | None = typer.Option(None, "--tile-size", help="Tile edge in pixels."),
    stride: int | None = typer.Option(None, "--stride", help="Step in pixels (default: size)."),
) -> None:
    """Detect tissue and record the slide's tissue tiles."""
    from pathloop.client.usecases.slides import find_slide, tile_slide

    settings = site_settings(ctx)
    overrides = {k: v for k, v in
                 {"mpp": mpp, "tile_size": tile_size, "stride": stride}.items() if v is not None}
    params = settings.tiling.model_copy(update=overrides)
    with site_command_log(ctx, "tile"), open_store(settings) as store, \
            progress_bar() as progress:
        record = find_slide(store, slide)
        task = progress.add_task(f"tiling {record.name}", total=None)
        result = tile_slide(settings, store, record, tiling=params,
                            progress=lambda done, total: progress.update(
                                task, completed=done, total=total))
    console.print(
        f"slide {record.id} {record.name}: {result.kept} tissue tiles of "
        f"{params.tile_size}px at {params.mpp} µm/px kept "
        f"({result.candidates} on tissue, {result.dropped_background} dropped as >"
        f"{params.max_background_fraction:.0%} black/white, {result.grid_tiles} in the grid; "
        f"tissue {result.tissue_fraction:.0%} of the slide) in {result.seconds:.1f} s",
        highlight=False)


def annotate(
    ctx: typer.Context,
    slide: str = typer.Argument(..., help="Slide id, content-hash prefix or path."),
    annotation: Path = typer.Argument(
        ..., help="Annotation file inside the slide roots: an 8-bit label image (PNG/TIFF), "
                  "ImageScope or ASAP XML, QuPath GeoJSON, DSA JSON or a CPM-15 mask."),
    format: str | None = typer.Option(
        None, "--format", help="imagescope-xml, asap-xml, geojson, dsa-json, cpm15-mask or "
                               "label-image (default: told from the file)."),
    mpp: float | None = typer.Option(
        None, "--mpp", help="µm/px of a label image (required for one); for outlines, of the "
                            "stored raster (default: the slide's level 0)."),
) -> None:
    """Import an earlier annotation of a slide (shown in the viewer; "keep annotation")."""
    from pathloop.client.usecases.review import import_annotation
    from pathloop.client.usecases.slides import find_slide

    settings = site_settings(ctx)
    with open_store(settings) as store:
        record = find_slide(store, slide)
        raster = import_annotation(settings, store, record, annotation, mpp=mpp, format=format)
    console.print(f"slide {record.id} {record.name}: annotation {raster.shape[1]}×"
                  f"{raster.shape[0]} px at {raster.mpp} µm/px stored (version "
                  f"{raster.version})", highlight=False)
