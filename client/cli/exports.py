"""``pathloop export worklist|corrections|findings``: GeoJSON that QuPath opens."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from pathloop.client.cli.context import console, open_store, site_settings
from pathloop.client.errors import InputError

app = typer.Typer(help="Export a slide's worklist or corrections, or an inspection's findings, "
                       "as GeoJSON for QuPath (level-0 pixels of the slide).",
                  no_args_is_help=True)

_OUT = typer.Option(..., "--out", "-o", help="New .geojson file (never overwritten).")


@app.command("worklist")
def export_worklist(
    ctx: typer.Context,
    slide: str = typer.Argument(..., help="Slide id, content-hash prefix or path."),
    out: Path = _OUT,
    strategy: str | None = typer.Option(None, "--strategy",
                                        help="The latest ranking by this strategy."),
) -> None:
    """The slide's latest worklist: one rectangle per patch, in rank order."""
    from pathloop.client.usecases.exports import worklist_geojson
    from pathloop.client.usecases.slides import find_slide

    _check_new(out)
    with open_store(site_settings(ctx)) as store:
        collection = worklist_geojson(store, find_slide(store, slide), strategy=strategy)
    _write(collection, out, "worklist patches")


@app.command("corrections")
def export_corrections(
    ctx: typer.Context,
    slide: str = typer.Argument(..., help="Slide id, content-hash prefix or path."),
    out: Path = _OUT,
) -> None:
    """The newest version of every corrected patch of the slide, as labelled regions."""
    from pathloop.client.usecases.exports import corrections_geojson
    from pathloop.client.usecases.slides import find_slide

    _check_new(out)
    settings = site_settings(ctx)
    with open_store(settings) as store:
        collection = corrections_geojson(settings, store, find_slide(store, slide))
    _write(collection, out, "corrected regions")


@app.command("findings")
def export_findings(
    ctx: typer.Context,
    inspection: int = typer.Argument(..., min=1, max=2**63 - 1,
                                     help="Inspection id (`pathloop quality inspect` prints "
                                          "it)."),
    out: Path = _OUT,
    alpha: float | None = typer.Option(None, "--alpha", min=0.0, max=1.0,
                                       help="Uncertainty weighting α (default: the run's)."),
    gamma: float | None = typer.Option(None, "--gamma", min=0.0, max=1.0,
                                       help="Size scaling γ (default: the run's)."),
) -> None:
    """An inspection's instances, classified Suspect (score ≥ 0.5) or Consistent."""
    from pathloop.client.usecases.exports import findings_geojson

    _check_new(out)
    with open_store(site_settings(ctx)) as store:
        collection = findings_geojson(store, inspection, alpha=alpha, gamma=gamma)
    _write(collection, out, "instances")


def _check_new(out: Path) -> None:
    if out.exists():
        raise InputError(f"{out}: exists; give a new file (exports never overwrite)")


def _write(collection: dict[str, Any], out: Path, what: str) -> None:
    from pathloop.client.annotations import write_feature_collection

    path = write_feature_collection(collection, out)
    console.print(f"{len(collection['features'])} {what} → {path}", highlight=False)
