"""A long command's log file: libraries' lines go there, the terminal keeps our own output.

Flower, Ray, nnU-Net and their dependencies write INFO lines, deprecation warnings and, from
native code, raw lines on the process's file descriptors 1 and 2. Inside
:func:`command_log` (unless ``verbose``):

* the file descriptors 1 and 2 point at the log file, so native output and the child
  processes' (Ray's workers) land there; so do ``sys.stdout``, ``sys.stderr`` and every
  logging handler that writes to them;
* the root logger writes INFO and above to the log file, and Python warnings are logged;
* the command's own consoles (:data:`~pathloop.client.cli.context.console`, ``errors``) and
  so its tables, results and progress bars keep writing to the terminal, through duplicates
  of the original descriptors.

With ``verbose`` nothing is redirected: the log file gets a copy of the INFO lines and the
terminal shows everything, as before. Everything is restored on exit, errors included.
"""

from __future__ import annotations

import io
import logging
import os
import sys
import time
from collections.abc import Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager
from pathlib import Path
from typing import IO

import typer

from pathloop.client.cli.context import cli_state, console, errors, site_settings

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


@contextmanager
def command_log(folder: Path, command: str, *, verbose: bool = False) -> Iterator[Path]:
    """Send library output of the block to ``folder/logs/<command>-<time>.log``; its path.

    The folder is made (owner-only) when missing.
    """
    logs = folder.expanduser() / "logs"
    logs.mkdir(parents=True, exist_ok=True, mode=0o700)
    path = logs / f"{command}-{time.strftime('%Y%m%d-%H%M%S')}.log"
    with ExitStack() as stack:
        log_file = stack.enter_context(
            open(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600), "a",
                 buffering=1, encoding="utf-8", errors="replace"))
        handler = logging.StreamHandler(log_file)
        handler.setFormatter(logging.Formatter(LOG_FORMAT))
        root = logging.getLogger()
        level = root.level
        kept = list(root.handlers)
        if not verbose:
            for old in kept:  # they write to the terminal's streams: the file gets it all
                root.removeHandler(old)
            stack.enter_context(_streams_into(log_file))
        elif not kept:  # verbose, and nothing shows log lines yet
            terminal = logging.StreamHandler()
            terminal.setFormatter(logging.Formatter(LOG_FORMAT))
            root.addHandler(terminal)
            stack.callback(root.removeHandler, terminal)
        root.addHandler(handler)
        root.setLevel(logging.INFO)
        logging.captureWarnings(True)
        try:
            console.print(f"log: {path}", highlight=False)
            yield path
        finally:
            logging.captureWarnings(False)
            root.removeHandler(handler)
            root.setLevel(level)
            for old in kept:
                if old not in root.handlers:
                    root.addHandler(old)
            handler.close()


def site_command_log(ctx: typer.Context, command: str) -> AbstractContextManager[Path]:
    """:func:`command_log` in the site's data folder, verbose as the root ``--verbose``."""
    return command_log(site_settings(ctx).data_dir, command, verbose=cli_state(ctx).verbose)


@contextmanager
def _streams_into(log_file: IO[str]) -> Iterator[None]:
    """Point fds 1 and 2 and ``sys.stdout``/``sys.stderr`` at ``log_file``; the consoles at
    the terminal."""
    saved_streams = sys.stdout, sys.stderr
    terminal_out, terminal_err = _terminal(sys.stdout), _terminal(sys.stderr)
    redirected: list[tuple[int, int]] = []
    try:
        for stream in saved_streams:
            stream.flush()
            descriptor = _fileno(stream)
            if descriptor is not None and all(descriptor != d for d, _ in redirected):
                redirected.append((descriptor, os.dup(descriptor)))
                os.dup2(log_file.fileno(), descriptor)
        console.file, errors.file = terminal_out, terminal_err
        sys.stdout = sys.stderr = log_file
        yield
    finally:
        sys.stdout, sys.stderr = saved_streams
        console.file = errors.file = None  # type: ignore[assignment]  # follow sys.std* again
        log_file.flush()
        for descriptor, saved in redirected:
            os.dup2(saved, descriptor)
            os.close(saved)
        for terminal, stream in ((terminal_out, saved_streams[0]),
                                 (terminal_err, saved_streams[1])):
            if terminal is not stream:
                terminal.close()


def _terminal(stream: IO[str]) -> IO[str]:
    """A stream on a duplicate of ``stream``'s descriptor (``stream`` itself without one)."""
    descriptor = _fileno(stream)
    if descriptor is None:
        return stream
    encoding = getattr(stream, "encoding", None) or "utf-8"
    return open(os.dup(descriptor), "w", buffering=1, encoding=encoding, errors="replace")


def _fileno(stream: IO[str]) -> int | None:
    try:
        return stream.fileno()
    except (AttributeError, io.UnsupportedOperation, ValueError):
        return None


__all__ = ["LOG_FORMAT", "command_log", "site_command_log"]
