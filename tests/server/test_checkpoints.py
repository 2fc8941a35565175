"""Global versions are written atomically, read back checked, and carry their lineage."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pathloop.server.checkpoints import CheckpointStore, GlobalVersion, SiteContribution
from pathloop.server.errors import CheckpointError


def _arrays(value: float) -> dict[str, np.ndarray]:
    return {"fold0/w": np.full((2, 3), value, np.float32), "fold1/w": np.arange(4.0)}


def test_versions_round_trip_with_lineage(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    assert store.latest() is None
    store.save(_arrays(0.0), GlobalVersion(0, None, "fedavg", plans_sha256="abc"))
    saved = store.save(_arrays(1.0), GlobalVersion(
        1, 0, "fedavg", contributions=[SiteContribution(7, 120, 5, {"dice": 0.7})],
        rejected=[{"node_id": 9, "reason": "holds NaN"}], plans_sha256="abc"))
    assert len(saved.arrays_sha256) == 64 and saved.created
    again = CheckpointStore(tmp_path)
    assert [v.version for v in again.versions()] == [0, 1]
    assert again.latest() == saved
    loaded = again.load(1)
    np.testing.assert_array_equal(loaded["fold0/w"], _arrays(1.0)["fold0/w"])
    assert loaded["fold1/w"].dtype == np.float64


def test_an_existing_version_is_never_overwritten(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.save(_arrays(0.0), GlobalVersion(0, None, "fedavg"))
    with pytest.raises(CheckpointError, match="global version 0 exists"):
        store.save(_arrays(5.0), GlobalVersion(0, None, "fedavg"))
    assert store.load(0)["fold0/w"].max() == 0.0


def test_damaged_arrays_and_staging_leftovers(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    store.save(_arrays(0.0), GlobalVersion(0, None, "fedavg"))
    (tmp_path / ".v0001.partial-1-2").mkdir()  # a server killed mid-write
    arrays = tmp_path / "v0000" / "arrays.npz"
    arrays.write_bytes(arrays.read_bytes()[:-10])
    reopened = CheckpointStore(tmp_path)
    assert not (tmp_path / ".v0001.partial-1-2").exists()
    assert reopened.latest() is not None and reopened.latest().version == 0  # type: ignore[union-attr]
    with pytest.raises(CheckpointError, match="does not match its recorded checksum"):
        reopened.load(0)
