"""The ``pathloop`` command: :mod:`~pathloop.client.cli.app` wires one typer sub-app (or
command) per module; :mod:`~pathloop.client.cli.context` holds what they share."""

from pathloop.client.cli.app import app, main

__all__ = ["app", "main"]
