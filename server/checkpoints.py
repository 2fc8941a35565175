"""Every global ensemble the server makes, kept with its lineage.

Layout under the checkpoint folder::

    v0000/arrays.npz     the initial global model (version 0)
    v0000/lineage.json   a :class:`GlobalVersion`
    v0001/…              after round 1, and so on

A version is written into a hidden staging folder and renamed into place, so a folder
named ``vNNNN`` is complete; a server killed mid-write leaves only a staging folder, which
the next start removes. Arrays are read back with ``allow_pickle=False`` and checked
against the SHA-256 recorded in the lineage: nothing is ever unpickled. A version holding
NaN or infinity is refused before anything is written: sites refuse such a model, so a
federation resumed from it would stall.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pathloop.server.aggregation import Arrays
from pathloop.server.errors import CheckpointError

ARRAYS_NAME = "arrays.npz"
LINEAGE_NAME = "lineage.json"
_VERSION_DIR = re.compile(r"^v(\d{4,})$")


@dataclass(frozen=True)
class SiteContribution:
    """What one site sent in a round and how it counted (scalars only: the site is Flower's
    node id; ``examples`` is its reported training patches)."""

    node_id: int
    examples: int
    corrections: int
    metrics: dict[str, float] = field(default_factory=dict)
    #: The averaging weight the site got after the caps (``None`` in versions written
    #: before the caps existed).
    weight: float | None = None
    #: Each member's change relative to its global norm as sent, by fold (``"0"``, …),
    #: before clipping: above ``clip-relative-change`` means the change was scaled down.
    change: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class GlobalVersion:
    """A global ensemble's lineage.

    Attributes
    ----------
    version:
        0 for the initial model, then the round that produced it.
    parent:
        The version it was aggregated from (``None`` for version 0).
    strategy:
        ``"fedavg"`` or ``"fedprox"`` (with its μ in ``config``).
    contributions:
        The accepted site updates.
    rejected:
        Refused updates: ``{"node_id": …, "reason": …}``.
    metrics:
        Aggregated metrics of the round (training and evaluation).
    plans_sha256:
        The global plans every member was trained under.
    arrays_sha256:
        Checksum of ``arrays.npz``; filled in when saved.
    config:
        The run configuration in force.
    created:
        UTC time of writing, ISO 8601.
    """

    version: int
    parent: int | None
    strategy: str
    contributions: list[SiteContribution] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    metrics: dict[str, float] = field(default_factory=dict)
    plans_sha256: str = ""
    arrays_sha256: str = ""
    config: dict[str, Any] = field(default_factory=dict)
    created: str = ""

    def to_json(self) -> dict[str, Any]:
        """A JSON-ready dict (inverse of :meth:`from_json`)."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GlobalVersion:
        """Rebuild from :meth:`to_json`'s output."""
        values = dict(data)
        values["contributions"] = [SiteContribution(**c) for c in values["contributions"]]
        return cls(**values)


class CheckpointStore:
    """The folder of global versions (see the module docstring for its layout)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        for stale in root.glob(".v*.partial-*"):
            shutil.rmtree(stale, ignore_errors=True)

    def save(self, arrays: Arrays, lineage: GlobalVersion) -> GlobalVersion:
        """Write a version atomically; return its lineage with checksum and time set.

        Raises
        ------
        CheckpointError
            The version exists already, an array holds NaN or infinity, or the write failed
            (nothing is left behind).
        """
        target = self._dir(lineage.version)
        if target.exists():
            raise CheckpointError(f"{target}: global version {lineage.version} exists")
        for name, array in arrays.items():
            if np.issubdtype(array.dtype, np.inexact) and not np.isfinite(array).all():
                raise CheckpointError(f"{target}: {name!r} holds NaN or infinite values; "
                                      f"global version {lineage.version} not written")
        staging = self.root / f".{target.name}.partial-{os.getpid()}-{time.time_ns()}"
        staging.mkdir()
        try:
            with open(staging / ARRAYS_NAME, "wb") as handle:
                named: dict[str, Any] = {name: np.asarray(a) for name, a in arrays.items()}
                np.savez(handle, allow_pickle=False, **named)
                handle.flush()
                os.fsync(handle.fileno())
            digest = _sha256(staging / ARRAYS_NAME)
            final = replace(lineage, arrays_sha256=digest,
                            created=datetime.now(UTC).isoformat())
            (staging / LINEAGE_NAME).write_text(json.dumps(final.to_json(), indent=1))
            staging.rename(target)
        except OSError as error:
            shutil.rmtree(staging, ignore_errors=True)
            raise CheckpointError(f"{target}: could not write ({error})") from None
        return final

    def versions(self) -> list[GlobalVersion]:
        """Every complete version, oldest first."""
        found = []
        for path in sorted(self.root.iterdir()):
            if _VERSION_DIR.match(path.name) and (path / LINEAGE_NAME).is_file():
                found.append(self._lineage(path))
        return sorted(found, key=lambda v: v.version)

    def latest(self) -> GlobalVersion | None:
        """The newest complete version, or ``None`` when there is none yet."""
        versions = self.versions()
        return versions[-1] if versions else None

    def load(self, version: int) -> dict[str, NDArray[np.generic]]:
        """The arrays of a version, checked against their recorded checksum."""
        folder = self._dir(version)
        lineage = self._lineage(folder)
        path = folder / ARRAYS_NAME
        if not path.is_file() or _sha256(path) != lineage.arrays_sha256:
            raise CheckpointError(f"{path}: missing or does not match its recorded checksum")
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}

    def _dir(self, version: int) -> Path:
        return self.root / f"v{version:04d}"

    def _lineage(self, folder: Path) -> GlobalVersion:
        try:
            return GlobalVersion.from_json(json.loads((folder / LINEAGE_NAME).read_text()))
        except (OSError, ValueError, TypeError, KeyError) as error:
            raise CheckpointError(f"{folder / LINEAGE_NAME}: unreadable lineage ({error})"
                                  ) from None


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


__all__ = ["CheckpointStore", "GlobalVersion", "SiteContribution"]
