"""Atomic publication of raster folders: write in a staging folder, fsync, rename into place.

A writer reserves a token in ``<root>/.staging``: a lock file ``<token>.lock`` that it holds
with ``flock`` for as long as it works (the kernel drops the lock when the process dies, even
on SIGKILL) and that names the final folder; it writes into ``<token>.zarr`` beside it, then
fsyncs the tree and renames it to its final place, which is atomic on one file system. After
the database record is committed the lock file is deleted.

:meth:`StagingArea.sweep` removes what dead writers left: their staging folders, and a final
folder that was renamed into place but never recorded in the database (a crash between the
rename and the commit). Locks held by live writers, in this or another process, are skipped.
POSIX only (``fcntl``).
"""

from __future__ import annotations

import errno
import fcntl
import logging
import os
import shutil
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

logger = logging.getLogger(__name__)

STAGING = ".staging"
"""Name of the staging folder under the raster root."""


@dataclass
class Staged:
    """A reserved staging folder and the final place it will be renamed to."""

    token: str
    lock_fd: int
    folder: Path
    final: Path
    final_relative: str


class StagingArea:
    """The staging folder of a raster root.

    Parameters
    ----------
    root:
        The raster root; final folders are given relative to it.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.folder = root / STAGING

    def reserve(self, final_relative: str) -> Staged:
        """Reserve a staging folder (created empty) that will become ``root/final_relative``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            token = uuid.uuid4().hex
            lock_path = self.folder / f"{token}.lock"
            fd = os.open(lock_path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o644)
            if not _try_lock(fd) or not _still_linked(fd, lock_path):
                os.close(fd)  # a sweeper took it between create and lock: pick another token
                continue
            os.write(fd, final_relative.encode("utf-8"))
            os.fsync(fd)
            folder = self.folder / f"{token}.zarr"
            folder.mkdir()
            return Staged(token, fd, folder, self.root / final_relative, final_relative)

    def publish(self, staged: Staged) -> None:
        """fsync the staged tree and rename it to its final place (atomic)."""
        _fsync_tree(staged.folder)
        staged.final.parent.mkdir(parents=True, exist_ok=True)
        os.rename(staged.folder, staged.final)
        _fsync_dir(staged.final.parent)
        _fsync_dir(self.folder)

    def discard(self, staged: Staged, *, published: bool) -> None:
        """Remove the staged folder (or the published one), then release the reservation."""
        shutil.rmtree(staged.final if published else staged.folder, ignore_errors=True)
        self.release(staged)

    def release(self, staged: Staged) -> None:
        """Delete the lock file and drop the lock (after the record is committed)."""
        try:
            (self.folder / f"{staged.token}.lock").unlink(missing_ok=True)
        finally:
            os.close(staged.lock_fd)

    def sweep(self, is_recorded: Callable[[str], bool]) -> int:
        """Remove what dead writers left behind; return how many reservations were swept.

        Parameters
        ----------
        is_recorded:
            Whether a final folder (relative to the root) is referenced by a database record.
        """
        if not self.folder.is_dir():
            return 0
        swept = 0
        for lock_path in sorted(self.folder.glob("*.lock")):
            if self._sweep_one(lock_path, is_recorded):
                swept += 1
        locks = {path.stem for path in self.folder.glob("*.lock")}
        for folder in self.folder.glob("*.zarr"):
            if folder.stem not in locks:  # a writer creates its lock before its folder
                shutil.rmtree(folder, ignore_errors=True)
        return swept

    def _sweep_one(self, lock_path: Path, is_recorded: Callable[[str], bool]) -> bool:
        try:
            fd = os.open(lock_path, os.O_RDWR)
        except FileNotFoundError:
            return False
        try:
            if not _try_lock(fd) or not _still_linked(fd, lock_path):
                return False  # a live writer holds it, or another sweeper took it
            final_relative = os.read(fd, 4096).decode("utf-8", errors="replace").strip()
            shutil.rmtree(self.folder / f"{lock_path.stem}.zarr", ignore_errors=True)
            if final_relative and not is_recorded(final_relative):
                final = (self.root / final_relative).resolve()
                if final.is_relative_to(self.root.resolve()) and final != self.root.resolve():
                    shutil.rmtree(final, ignore_errors=True)
            lock_path.unlink(missing_ok=True)
            logger.info("swept an unfinished raster write (%s)", final_relative or lock_path.name)
            return True
        finally:
            os.close(fd)


def _try_lock(fd: int) -> bool:
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return False
        raise
    return True


def _still_linked(fd: int, path: Path) -> bool:
    try:
        return os.stat(path).st_ino == os.fstat(fd).st_ino
    except FileNotFoundError:
        return False


def _fsync_tree(folder: Path) -> None:
    for directory, _, files in os.walk(folder, topdown=False):
        for name in files:
            fd = os.open(os.path.join(directory, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(directory))


def _fsync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
