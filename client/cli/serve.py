"""``pathloop serve`` (the site service and its viewer) and ``pathloop api token``."""

from __future__ import annotations

import typer

from pathloop.client.cli.context import site_settings

api_app = typer.Typer(help="Users of the site service and their tokens.", no_args_is_help=True)


def serve(
    ctx: typer.Context,
    host: str | None = typer.Option(None, "--host", help="Address to bind ([api] host)."),
    port: int | None = typer.Option(None, "--port", min=1, max=65535, help="[api] port."),
) -> None:
    """Run the site service: the API and the viewer, until interrupted."""
    from pathloop.client.api.serving import first_token, serve, viewer_url

    settings = site_settings(ctx)
    token = first_token(settings)
    typer.echo(f"pathloop site {settings.site_id}: open {viewer_url(settings, token, port=port)}")
    if token is None and settings.api.require_token:
        typer.echo("(make a token with `pathloop api token add NAME` and add #token=… to the "
                   "address)")
    serve(settings, host=host, port=port)


@api_app.command("token")
def api_token(
    ctx: typer.Context,
    action: str = typer.Argument(..., help="add, list or revoke"),
    user: str | None = typer.Argument(None, help="User name (add, revoke)."),
) -> None:
    """Make a token for a user (printed once), list users, or revoke a user's tokens."""
    from pathloop.client.api import TokenStore
    from pathloop.client.errors import InputError

    tokens = TokenStore.for_data_dir(site_settings(ctx).data_dir)
    if action == "list":
        for name in tokens.users():
            typer.echo(name)
    elif action in ("add", "revoke") and user:
        if action == "add":
            typer.echo(tokens.add(user))
        else:
            typer.echo(f"revoked {tokens.revoke(user)} token(s) of {user}", err=True)
    else:
        raise InputError("usage: pathloop api token add NAME | list | revoke NAME")
