"""``pathloop site key|join``: this site's SuperNode in a federation."""

from __future__ import annotations

from pathlib import Path

import typer

from pathloop.client.cli.context import cli_state, console
from pathloop.client.errors import ConfigError

app = typer.Typer(help="Take part in a federation: this site's SuperNode.",
                  no_args_is_help=True)


@app.command("key")
def site_key(
    folder: Path = typer.Argument(..., help="Folder for the key pair (keep it private)."),
    name: str = typer.Option(..., "--name", help="The key's name, e.g. this site's id."),
) -> None:
    """Make this site's SuperNode key pair; send only the .pub file to the central team."""
    from pathloop.server.credentials import make_node_key

    key = make_node_key(folder, name)
    console.print(f"private key (never leaves this site): {key.private}\n"
                  f"public key (send to the central team): {key.public}", highlight=False)


@app.command("join")
def site_join(
    ctx: typer.Context,
    superlink: str = typer.Option(..., "--superlink", help="The SuperLink's HOST:PORT."),
    ca: Path = typer.Option(..., "--ca", help="The federation's CA certificate (ca.crt)."),
    key: Path = typer.Option(..., "--key", help="This site's SuperNode private key."),
    port: int = typer.Option(9094, "--port", help="The SuperNode's Runtime API port "
                                                  "(127.0.0.1 only)."),
) -> None:
    """Run this site's SuperNode in the foreground (the site config from --config).

    Its ClientApp tasks run the installed pathloop ClientApp; a run whose app bundle is not
    pathloop's is refused (see docs/federation.md).
    """
    import os

    from pathloop.server.deployment import (
        process_environment,
        site_node_command,
        supernode_command,
    )

    state = cli_state(ctx)
    config = state.config_file
    if config is None:
        raise ConfigError("site join needs the site's config file: pathloop --config FILE "
                          "site join …")
    settings = state.settings()
    if settings.federation.training_images is None:
        raise ConfigError(f"{config}: [federation] names no training-images (see "
                          "docs/federation.md)")
    command = site_node_command(supernode_command(config, superlink, ca, key, port), port)
    console.print(f"site {settings.site_id}: SuperNode to {superlink}", highlight=False)
    os.execve(command[0], command, process_environment())
