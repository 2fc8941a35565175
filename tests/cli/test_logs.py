"""Long commands keep libraries' output in a log file and their own on the terminal."""

from __future__ import annotations

import logging
import os
import stat
import subprocess
import sys
import warnings
from pathlib import Path

from pathloop.client.cli.context import console
from pathloop.client.cli.logs import command_log

# A child process stands for everything that writes to the descriptors directly: Ray's and
# Flower's processes, native libraries.
_SCRIPT = """
import logging, subprocess, sys, warnings
from pathlib import Path
from pathloop.client.cli.context import console, errors
from pathloop.client.cli.logs import command_log

with command_log(Path(sys.argv[1]), "check", verbose=sys.argv[2] == "verbose") as path:
    logging.getLogger("flwr").info("library INFO line")
    warnings.warn("library deprecation warning", DeprecationWarning, stacklevel=1)
    print("stray print")
    subprocess.run([sys.executable, "-c", "import os; os.write(2, b'native stderr line\\\\n')"])
    console.print("our result line")
    errors.print("our progress line")
print("after the block")
"""


def _run(folder: Path, mode: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-W", "default", "-c", _SCRIPT, str(folder), mode],
                          capture_output=True, text=True, timeout=120, check=True)


def test_library_output_goes_to_the_log_and_ours_to_the_terminal(tmp_path: Path) -> None:
    result = _run(tmp_path, "quiet")
    terminal = result.stdout + result.stderr
    (log,) = (tmp_path / "logs").glob("check-*.log")
    assert f"log: {log}" in result.stdout
    assert "our result line" in result.stdout and "our progress line" in result.stderr
    assert "after the block" in result.stdout  # the streams are back
    for line in ("library INFO line", "library deprecation warning", "stray print",
                 "native stderr line"):
        assert line not in terminal, line
        assert line in log.read_text(), line
    assert "our result line" not in log.read_text()
    assert stat.S_IMODE(log.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "logs").stat().st_mode) == 0o700


def test_verbose_shows_everything_and_still_keeps_the_log(tmp_path: Path) -> None:
    result = _run(tmp_path, "verbose")
    terminal = result.stdout + result.stderr
    for line in ("library INFO line", "library deprecation warning", "stray print",
                 "native stderr line", "our result line"):
        assert line in terminal, line
    (log,) = (tmp_path / "logs").glob("check-*.log")
    assert "library INFO line" in log.read_text()


def test_everything_is_restored_in_process_even_after_an_error(tmp_path: Path) -> None:
    root = logging.getLogger()
    before = (list(root.handlers), root.level, sys.stdout, sys.stderr)
    try:
        with command_log(tmp_path, "fails"), warnings.catch_warnings():
            raise RuntimeError("boom")
    except RuntimeError:
        pass
    assert (list(root.handlers), root.level, sys.stdout, sys.stderr) == before
    assert console.file is sys.stdout
    os.write(1, b"")  # descriptor 1 is usable again
