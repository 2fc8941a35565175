"""The ``pathloop`` command's wiring: every command and sub-app, and where it lives.

A :class:`~pathloop.client.errors.PathloopError` or the aggregation server's
:class:`~pathloop.server.errors.FederationError` (:data:`~pathloop.client.cli.context.USER_ERRORS`)
is printed as one line on stderr with exit code 1; anything else is a bug and keeps its
traceback.
"""

from __future__ import annotations

import logging
import os
import sys
from pathlib import Path

import typer

from pathloop.client.cli import demo, evaluation, exports, loop, model, quality, serve, site, slides
from pathloop.client.cli.context import USER_ERRORS, CliState, print_error
from pathloop.server.cli import app as server_app
from pathloop.server.deployment import TELEMETRY_OFF

app = typer.Typer(help="pathloop: federated human-in-the-loop pathology, the site node.",
                  no_args_is_help=True, pretty_exceptions_enable=False)


@app.callback()
def _main(
    ctx: typer.Context,
    config: Path | None = typer.Option(None, "--config", "-c", envvar="PATHLOOP_CONFIG",
                                       help="Site config file (TOML)."),
    verbose: bool = typer.Option(False, "--verbose", "-v",
                                 help="Show libraries' log lines and warnings on the terminal "
                                      "(long commands otherwise keep them in a log file)."),
) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
    ctx.obj = CliState(config, verbose)


app.command("tile")(slides.tile)
app.command("annotate")(slides.annotate)
app.command("predict")(loop.predict)
app.command("rank")(loop.rank)
app.command("demo")(demo.demo)
app.command("serve")(serve.serve)
app.add_typer(slides.app, name="slides")
app.add_typer(server_app, name="server")
app.add_typer(model.app, name="model")
app.add_typer(site.app, name="site")
app.add_typer(serve.api_app, name="api")
app.add_typer(evaluation.app, name="eval")
app.add_typer(quality.app, name="quality")
app.add_typer(exports.app, name="export")


def main() -> None:
    """Entry point: run the app, turning deliberate errors into one line and exit 1.

    Everything a command writes (stores, rasters, models, keys, logs) is for its own user
    only: the umask is 0077 whatever the shell's. Flower's telemetry is off.
    """
    os.umask(0o077)
    # Before anything imports flwr (it reads this once, at import): the demo's simulated
    # federation and every Flower process started from here report nothing to flower.ai.
    os.environ.update(TELEMETRY_OFF)
    try:
        app()
    except USER_ERRORS as error:
        print_error(error)
        sys.exit(1)
    except KeyboardInterrupt:
        typer.echo("interrupted", err=True)
        sys.exit(130)
