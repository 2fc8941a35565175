"""What every ``pathloop`` command shares: settings through typer's context, the site's
store, the consoles, progress bars and the one-line error.

The root callback (:mod:`pathloop.client.cli.app`) puts a :class:`CliState` in ``ctx.obj``;
a command asks it for the settings (:func:`site_settings`), built once, on first use, from
``--config`` (or ``$PATHLOOP_CONFIG``, or ``./pathloop.toml`` when present) and passed down.
Heavy imports live inside the commands, so ``pathloop --help`` stays fast.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import typer
from rich.console import Console

from pathloop.client.errors import PathloopError
from pathloop.client.settings import SiteSettings
from pathloop.server.errors import FederationError

if TYPE_CHECKING:
    from rich.progress import Progress

    from pathloop.client.store import Store

USER_ERRORS: tuple[type[Exception], ...] = (PathloopError, FederationError)
"""The roots of the two deliberate error trees, caught once by the command.

The site node's :class:`PathloopError` and the aggregation server's :class:`FederationError`
stay two trees: the aggregation host never imports the site node, and a base in the server
for the site's tree would tie every site error to the server package. Only this edge, which
drives both, names both.
"""

# Wide enough for the tables when the output goes to a file or a pipe.
console = Console(soft_wrap=True, width=None if sys.stdout.isatty() else 120)
errors = Console(stderr=True)


@dataclass
class CliState:
    """The root options, kept in typer's context (``ctx.obj``) for the commands."""

    config: Path | None = None
    verbose: bool = False
    _settings: SiteSettings | None = field(default=None, repr=False)

    @property
    def config_file(self) -> Path | None:
        """``--config``, else ``./pathloop.toml`` when present, else ``None``."""
        if self.config is None and Path("pathloop.toml").is_file():
            return Path("pathloop.toml")
        return self.config

    def settings(self) -> SiteSettings:
        """The site settings, validated on first use."""
        if self._settings is None:
            path = self.config_file
            self._settings = SiteSettings.from_file(path) if path else SiteSettings()
        return self._settings


def cli_state(ctx: typer.Context) -> CliState:
    """The :class:`CliState` the root callback put in the context."""
    return ctx.ensure_object(CliState)


def site_settings(ctx: typer.Context) -> SiteSettings:
    """The site settings of this invocation."""
    return cli_state(ctx).settings()


@contextmanager
def open_store(settings: SiteSettings) -> Iterator[Store]:
    """The site's store, closed when the command is done."""
    from pathloop.client.store import Store

    store = Store.open(settings)
    try:
        yield store
    finally:
        store.close()


@contextmanager
def progress_bar() -> Iterator[Progress]:
    """A transient rich progress bar on stderr."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                  TimeElapsedColumn(), console=errors, transient=True) as progress:
        yield progress


def print_error(error: Exception) -> None:
    """One plain line on stderr, never wrapped or coloured (scripts parse it)."""
    message = " ".join(str(error).split())
    typer.echo(f"error: {message}", err=True)
