"""``pathloop demo``: the whole site loop on sample slides, then the viewer."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.table import Table

from pathloop.client.cli.context import cli_state, console, progress_bar
from pathloop.client.cli.logs import command_log

if TYPE_CHECKING:
    from pathloop.client.demo import DemoSummary
    from pathloop.client.demo.report import DemoResults


def demo(
    ctx: typer.Context,
    workdir: Path = typer.Option(Path("pathloop-demo"), "--workdir",
                                 help="Folder for the demo's sample slides and site stores."),
    sites: int = typer.Option(3, "--sites", min=1, max=3, help="Simulated sites."),
    slides_per_site: int = typer.Option(2, "--slides-per-site", min=1, max=10),
    size: int = typer.Option(4096, "--size", min=1024, max=65536,
                             help="Edge of each sample slide in pixels."),
    loop: bool = typer.Option(True, "--loop/--no-loop",
                              help="Run the UGA loop (train, rank, correct, retrain)."),
    rounds: int | None = typer.Option(None, "--rounds", min=0, max=20,
                                      help="Federated rounds after the loop (0: none; "
                                           "default: what the demo is tuned for, 2)."),
    federation: str = typer.Option("simulation", "--federation",
                                   help="simulation (Flower's Simulation Runtime) or loopback "
                                        "(SuperLink + SuperNodes on this machine, TLS)."),
    aggregation_rule: str = typer.Option("mean", "--aggregation-rule",
                                         help="The server's rule: mean (weighted FedAvg), "
                                              "trimmed-mean or median (docs/federation.md)."),
    serve_viewer: bool = typer.Option(True, "--serve/--no-serve",
                                      help="End by serving a site's viewer until Ctrl+C."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="The viewer's port."),
    seed: int = typer.Option(0, "--seed", min=0, max=2**20 - 1,
                             help="Draws the sample slides and seeds the training."),
    k: int | None = typer.Option(None, "--k", min=1, max=100,
                                 help="Patches each site's simulated pathologist corrects "
                                      "(default: what the demo is tuned for)."),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Libraries' log lines (Flower, Ray, nnU-Net) on the "
                                      "terminal too."),
) -> None:
    """Run the whole site loop on sample slides made for the demo, then serve its viewer."""
    from pathloop.client.demo import run_demo, viewer_settings

    workdir = workdir.expanduser().resolve()
    with command_log(workdir, "demo", verbose=verbose or cli_state(ctx).verbose):
        with progress_bar() as progress:
            task = progress.add_task("demo", total=None)

            def report(message: str, done: int, total: int) -> None:
                progress.update(task, description=message, completed=done, total=total)

            summary = run_demo(workdir, n_sites=sites, slides_per_site=slides_per_site,
                               size=size, seed=seed, loop=loop, rounds=rounds,
                               k=k, federation=federation,
                               aggregation_rule=aggregation_rule, progress=report)
        console.print(_tiling_table(summary))
        if summary.results is not None:
            console.print(results_table(summary.results))
        for line in summary.lines():
            console.print(line, highlight=False)
    if serve_viewer:
        from pathloop.client.api import TokenStore
        from pathloop.client.api.serving import serve, viewer_url

        settings = viewer_settings(summary)
        # The demo's one user also runs jobs from the viewer.
        token = TokenStore.for_data_dir(settings.data_dir).add("demo-pathologist", "operator")
        console.print(f"Viewer of site {settings.site_id} (Ctrl+C stops it): "
                      f"{viewer_url(settings, token, port=port)}", highlight=False, soft_wrap=True)
        serve(settings, port=port)


def _tiling_table(summary: DemoSummary) -> Table:
    table = Table("site", "slide", "size", "µm/px", "tissue", "tiles kept", "dropped", "seconds",
                  title="pathloop demo: sample slides ingested and tiled")
    for row in summary.rows:
        table.add_row(row.site_id, row.slide_name, f"{row.width}×{row.height}",
                      f"{row.mpp:.2f}", f"{row.tissue_fraction:.0%}", str(row.kept),
                      str(row.dropped_background), f"{row.seconds:.1f}")
    return table


def results_table(results: DemoResults) -> Table:
    """Held-out Dice per site and stage, a mean row and a row of what each stage cost."""
    rounds = range(1, results.n_rounds + 1)
    table = Table("site", "stain / morphology", "baseline", f"+{results.k} own corrections",
                  *(f"global, round {r}" for r in rounds),
                  title=f"pathloop demo (seed {results.seed}): tumour Dice on each site's "
                        "held-out slide")
    for site in results.sites:
        corrected = "—" if site.corrected is None else (
            f"{site.corrected:.3f} ({site.corrected - site.baseline:+.3f})")
        table.add_row(site.site_id, f"{site.stain} / {site.morphology}",
                      f"{site.baseline:.3f}", corrected,
                      *(f"{d:.3f} ({d - site.baseline:+.3f})" for d in site.rounds))
    means = [results.mean_after_round(r) for r in rounds]
    table.add_row("mean", "", f"{results.mean_baseline():.3f}", "",
                  *("—" if m is None else f"{m:.3f} ({m - results.mean_baseline():+.3f})"
                    for m in means), style="bold")
    seconds = results.seconds
    baseline_s = sum(v for name, v in seconds.items() if "baseline" in name)
    corrections = [s.correction_seconds for s in results.sites if s.correction_seconds]
    table.add_row("time", "", f"{baseline_s:.0f} s",
                  f"{sum(corrections):.0f} s" if corrections else "—",
                  *(f"{results.round_seconds.get(r, 0.0):.0f} s" for r in rounds),
                  style="dim")
    table.caption = (f"wall time {results.wall_seconds / 60:.1f} min; per stage: "
                     + ", ".join(f"{name} {v:.0f} s" for name, v in seconds.items()))
    return table
