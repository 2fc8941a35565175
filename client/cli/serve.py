"""``pathloop serve`` (the site service and its viewer) and ``pathloop api token``."""

from __future__ import annotations

import getpass
import os
import sys

import typer

from pathloop.client.cli.context import open_store, site_settings

api_app = typer.Typer(help="Users of the site service, their roles and tokens.",
                      no_args_is_help=True)

ROLES = "pathologist, reviewer, operator or admin"


def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Address to bind ([api] host)."),
    port: int | None = typer.Option(None, "--port", min=1, max=65535, help="[api] port."),
) -> None:
    """Run the site service: the API and the viewer, until interrupted.

    On a site nobody holds a token of yet, an admin token is made and its address shown,
    but only on a terminal: a token never goes to a log file or a journal.
    """
    from pathloop.client.api.serving import FIRST_USER, first_token, serve, viewer_url

    settings = site_settings(ctx)
    token = first_token(settings, actor=cli_actor()) if sys.stdout.isatty() else None
    typer.echo(f"pathloop site {settings.site_id}: open {viewer_url(settings, token, port=port)}")
    if token is not None:
        typer.echo(f"(a token for {FIRST_USER}, role admin: shown once, not kept)")
    elif settings.api.require_token:
        typer.echo("(no token shown here: make one with `pathloop api token add NAME "
                   "--role ROLE` and add #token=… to the address)")
    serve(settings, host=host, port=port)


@api_app.command("token")
def api_token(
    ctx: typer.Context,
    action: str = typer.Argument(..., help="add, list or revoke"),
    user: str | None = typer.Argument(None, help="User name (add, revoke)."),
    role: str = typer.Option("pathologist", "--role", help=f"Role of a new token: {ROLES}."),
) -> None:
    """Make a token for a user (printed once), list users and roles, or revoke a user's
    tokens. Every change is written to the site's audit log."""
    from pathloop.client.api import TokenStore
    from pathloop.client.api.token_admin import issue_token, revoke_tokens
    from pathloop.client.errors import InputError

    settings = site_settings(ctx)
    tokens = TokenStore.for_data_dir(settings.data_dir)
    if action == "list":
        for name, held in tokens.roles().items():
            typer.echo(f"{name}\t{held}")
    elif action in ("add", "revoke") and user:
        with open_store(settings) as store:
            if action == "add":
                typer.echo(issue_token(tokens, store, actor=cli_actor(), user=user, role=role,
                                       via="cli"))
            else:
                count = revoke_tokens(tokens, store, actor=cli_actor(), user=user, via="cli")
                typer.echo(f"revoked {count} token(s) of {user}", err=True)
    else:
        raise InputError("usage: pathloop api token add NAME [--role ROLE] | list | "
                         "revoke NAME")


def cli_actor() -> str:
    """Who runs this command, as the audit log names them: ``cli:<login name>``."""
    try:
        return f"cli:{getpass.getuser()}"
    except (KeyError, OSError):  # no login name and no passwd entry (a bare container)
        return f"cli:uid-{os.getuid()}"
