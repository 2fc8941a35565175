"""``pathloop demo``: the whole site loop on sample slides, then the viewer."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.table import Table

from pathloop.client.cli.context import console, progress_bar


def demo(
    workdir: Path = typer.Option(Path("pathloop-demo"), "--workdir",
                                 help="Folder for the demo's sample slides and site stores."),
    sites: int = typer.Option(3, "--sites", min=1, max=3, help="Simulated sites."),
    slides_per_site: int = typer.Option(2, "--slides-per-site", min=1, max=10),
    size: int = typer.Option(4096, "--size", min=1024, max=65536,
                             help="Edge of each sample slide in pixels."),
    loop: bool = typer.Option(True, "--loop/--no-loop",
                              help="Run the UGA loop (train, rank, correct, retrain)."),
    rounds: int = typer.Option(2, "--rounds", min=0, max=20,
                               help="Federated rounds after the loop (0: none)."),
    federation: str = typer.Option("simulation", "--federation",
                                   help="simulation (Flower's Simulation Runtime) or loopback "
                                        "(SuperLink + SuperNodes on this machine, TLS)."),
    serve_viewer: bool = typer.Option(True, "--serve/--no-serve",
                                      help="End by serving a site's viewer until Ctrl+C."),
    port: int = typer.Option(8765, "--port", min=1, max=65535, help="The viewer's port."),
) -> None:
    """Run the whole site loop on sample slides made for the demo, then serve its viewer."""
    from pathloop.client.demo import run_demo, viewer_settings

    with progress_bar() as progress:
        task = progress.add_task("demo", total=None)

        def report(message: str, done: int, total: int) -> None:
            progress.update(task, description=message, completed=done, total=total)

        summary = run_demo(workdir, n_sites=sites, slides_per_site=slides_per_site,
                           size=size, loop=loop, rounds=rounds, federation=federation,
                           progress=report)
    table = Table("site", "slide", "size", "µm/px", "tissue", "tiles kept", "dropped", "seconds",
                  title="pathloop demo: sample slides ingested and tiled")
    for row in summary.rows:
        table.add_row(row.site_id, row.slide_name, f"{row.width}×{row.height}",
                      f"{row.mpp:.2f}", f"{row.tissue_fraction:.0%}", str(row.kept),
                      str(row.dropped_background), f"{row.seconds:.1f}")
    console.print(table)
    for line in summary.lines():
        console.print(line, highlight=False)
    if serve_viewer:
        from pathloop.client.api import TokenStore
        from pathloop.client.api.serving import serve, viewer_url

        settings = viewer_settings(summary)
        token = TokenStore.for_data_dir(settings.data_dir).add("demo-pathologist")
        console.print(f"Viewer of site {settings.site_id} (Ctrl+C stops it): "
                      f"{viewer_url(settings, token, port=port)}", highlight=False, soft_wrap=True)
        serve(settings, port=port)
