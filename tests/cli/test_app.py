"""The command's wiring: settings through typer's context, one-line errors from both trees."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from typer.testing import CliRunner

from pathloop.client.cli.app import app


def _config(folder: Path, site_id: str) -> Path:
    config = folder / f"{site_id}.toml"
    config.write_text(f'site-id = "{site_id}"\ndata-dir = "{site_id}-data"\n')
    return config


def test_each_invocation_reads_its_own_config(tmp_path: Path) -> None:
    runner = CliRunner()
    for site_id in ("site-a", "site-b"):
        result = runner.invoke(app, ["--config", str(_config(tmp_path, site_id)),
                                     "api", "token", "add", f"dr-{site_id}"])
        assert result.exit_code == 0, result.output
    for site_id in ("site-a", "site-b"):
        listed = runner.invoke(app, ["--config", str(tmp_path / f"{site_id}.toml"),
                                     "api", "token", "list"])
        assert listed.output.splitlines() == [f"dr-{site_id}\tpathologist"]
    assert (tmp_path / "site-a-data").is_dir() and (tmp_path / "site-b-data").is_dir()


def _pathloop(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "pathloop.client", *args],
                          capture_output=True, text=True, timeout=120, check=False)


def test_a_site_error_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = _pathloop("--config", str(tmp_path / "missing.toml"), "slides", "list")
    assert result.returncode == 1
    assert result.stderr == f"error: {tmp_path / 'missing.toml'}: config file not found\n"


def test_a_server_error_is_one_line_and_exit_1(tmp_path: Path) -> None:
    result = _pathloop("site", "key", str(tmp_path / "keys"), "--name", "../escape")
    assert result.returncode == 1
    assert result.stderr == ("error: node key name '../escape': use letters, digits, '.', '_' "
                             "or '-'\n")
