"""The pathloop Flower App: the folder ``flwr run`` bundles and submits to a SuperLink.

A Flower App is a folder with a ``pyproject.toml`` naming the ServerApp and ClientApp and
declaring the run config. Flower bundles the folder into a FAB by walking all of it, and
pathloop's code is already installed on the aggregation host and at every site (runtime
dependency installation is off), so the app is written on demand into a small folder of its
own rather than kept in the repository's root (whose virtualenv and viewer packages Flower
would walk on every run, and which an installed pathloop does not have).

The run config it declares is :class:`~pathloop.server.settings.ServerSettings`' fields with
their defaults: one source of truth for keys and defaults. Its names and files are the wire
contract's (:data:`~pathloop.server.contract.APP_FILES`): a site refuses any bundle with more.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import tomli_w

from pathloop.server.contract import APP_NAME, CLIENT_APP, SERVER_APP
from pathloop.server.settings import ServerSettings

APP_VERSION = "1.0.0"


def app_config_defaults() -> dict[str, Any]:
    """The run-config keys and their defaults (paths default to "", meaning unset)."""
    defaults: dict[str, Any] = {}
    for name, field in ServerSettings.model_fields.items():
        value = None if field.is_required() else field.default
        defaults[field.alias or name] = "" if value is None else value
    return defaults


def write_flower_app(folder: Path) -> Path:
    """Write the Flower App into ``folder`` (replacing an older one); the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    project = {
        "project": {"name": APP_NAME, "version": APP_VERSION,
                    "description": "pathloop's federated rounds of the 5-fold ensemble",
                    "requires-python": ">=3.11,<4", "dependencies": []},
        "tool": {"flwr": {"app": {
            "publisher": "pathloop",
            "components": {"serverapp": SERVER_APP, "clientapp": CLIENT_APP},
            "config": app_config_defaults(),
        }}},
    }
    (folder / "README.md").write_text(
        "# pathloop Flower App\n\nWritten by pathloop; submit it with `pathloop server run`."
        " Its code is the installed pathloop package.\n")
    partial = folder / ".pyproject.toml.partial"
    partial.write_text(tomli_w.dumps(project))
    partial.replace(folder / "pyproject.toml")
    return folder


__all__ = ["APP_NAME", "CLIENT_APP", "SERVER_APP", "app_config_defaults", "write_flower_app"]
