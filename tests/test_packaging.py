"""The distribution lists every package folder, and the public surfaces are what they say."""

from __future__ import annotations

import importlib
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = {"client": "pathloop.client", "server": "pathloop.server"}


def _package_folders() -> set[str]:
    found = set()
    for folder, dotted in ROOTS.items():
        for init in (REPO / folder).rglob("__init__.py"):
            relative = init.parent.relative_to(REPO / folder)
            found.add(".".join([dotted, *relative.parts]))
    return found


def test_every_package_folder_is_listed_in_pyproject() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    assert set(config["packages"]) == _package_folders()
    assert config["package-dir"] == {"pathloop.client": "client", "pathloop.server": "server"}


def test_no_top_level_client_or_server_import() -> None:
    offenders = []
    for path in list(REPO.glob("client/**/*.py")) + list(REPO.glob("server/**/*.py")) + \
            list(REPO.glob("tests/**/*.py")) + list(REPO.glob("bench/*.py")):
        for line in path.read_text().splitlines():
            stripped = line.strip()
            if stripped.startswith(("import client", "from client", "import server",
                                    "from server")):
                offenders.append(f"{path.relative_to(REPO)}: {stripped}")
    assert offenders == []


def test_the_root_of_client_holds_packages_and_its_foundations_only() -> None:
    loose = {path.name for path in (REPO / "client").glob("*.py")}
    assert loose == {"__init__.py", "__main__.py", "settings.py", "errors.py"}


@pytest.mark.parametrize("module", ["pathloop.client.wsi", "pathloop.client.tiling",
                                    "pathloop.client.errors", "pathloop.client.api",
                                    "pathloop.client.cli", "pathloop.client.demo",
                                    "pathloop.client.annotations"])
def test_public_names_exist(module: str) -> None:
    imported = importlib.import_module(module)
    assert imported.__all__ == sorted(imported.__all__)
    for name in imported.__all__:
        assert hasattr(imported, name), f"{module}.{name}"
