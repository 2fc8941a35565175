"""Noisy annotations on disk: the clean labels read from any annotation format, the noisy
label array written pixel for pixel, and a JSON sidecar with the truth.

For ``OUT`` (``.npy``, ``.npz``, ``.png`` or ``.tif``) the sidecar is ``OUT`` with the suffix
``.noise.json``: the source file, the noise type, β, the seed, and the ids that are noisy
(``noisy_labels``, ids in ``OUT``) and that the noise touched (``affected_clean``, ids of the
clean array) — what an evaluation scores an inspection against. Both files are written to
temporary siblings first (owner-only, 0o600) and renamed into place together; an existing
file is never overwritten.
"""

from __future__ import annotations

import io
import json
import os
import tempfile
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from pathloop.client.annotations import read_annotations
from pathloop.client.errors import InputError
from pathloop.client.quality.labels import as_labels
from pathloop.client.quality.noise import NoisyAnnotation

#: Label array formats the noisy labels are written in, pixel for pixel.
NOISY_SUFFIXES = (".npy", ".npz", ".png", ".tif", ".tiff")
SIDECAR_SUFFIX = ".noise.json"


def read_clean_labels(path: Path) -> NDArray[np.int32]:
    """The clean instances of an annotation file as an ``(H, W)`` ``int32`` label array.

    Any format :func:`~pathloop.client.annotations.read_annotations` reads: a label image
    keeps its size; a polygon format (XML, GeoJSON, DSA JSON) covers its image size when the
    file says it, else the instances' extent from (0, 0).

    Raises
    ------
    InputError
        The file is missing, malformed or in no known format.
    """
    annotations = read_annotations(path)
    if annotations.image_size is not None:
        width, height = annotations.image_size
        return as_labels(annotations.to_labels((height, width)), str(path))
    return as_labels(annotations.to_labels(), str(path))


def sidecar_path(out: Path) -> Path:
    """Where the truth of the noisy labels at ``out`` is written."""
    return out.with_suffix(SIDECAR_SUFFIX)


def write_noisy(noisy: NoisyAnnotation, out: Path, *, source: Path) -> tuple[Path, Path]:
    """Write the noisy label array to ``out`` and its truth beside it; return both paths.

    Raises
    ------
    InputError
        ``out`` has a suffix other than :data:`NOISY_SUFFIXES`, ids too large for a PNG, or
        ``out`` or its sidecar exists already (nothing is written then).
    """
    out = Path(out)
    suffix = out.suffix.lower()
    if suffix not in NOISY_SUFFIXES:
        raise InputError(f"{out}: noisy labels are written as one of "
                         f"{', '.join(NOISY_SUFFIXES)}")
    sidecar = sidecar_path(out)
    for path in (out, sidecar):
        if path.exists():
            raise InputError(f"{path}: already exists; nothing was written (remove it or "
                             "choose another output)")
    truth = {
        "source": str(source), "labels": out.name, "kind": noisy.kind, "beta": noisy.beta,
        "seed": noisy.seed, "shape": list(noisy.labels.shape),
        "noisy_labels": sorted(noisy.noisy_labels),
        "affected_clean": sorted(noisy.affected_clean),
    }
    staged = [_stage(out, _encode(noisy.labels, suffix, out)),
              _stage(sidecar, (json.dumps(truth, indent=2) + "\n").encode())]
    try:
        os.replace(staged[0], out)
        os.replace(staged[1], sidecar)
    except BaseException:
        for path in staged:
            path.unlink(missing_ok=True)
        out.unlink(missing_ok=True)
        raise
    return out, sidecar


def _encode(labels: NDArray[np.int32], suffix: str, out: Path) -> bytes:
    buffer = io.BytesIO()
    if suffix == ".npy":
        np.save(buffer, labels, allow_pickle=False)
    elif suffix == ".npz":
        np.savez_compressed(buffer, labels=labels)
    elif suffix == ".png":
        from PIL import Image

        top = int(labels.max(initial=0))
        if top > 65535:
            raise InputError(f"{out}: instance id {top} does not fit a 16-bit PNG: write "
                             ".tif, .npy or .npz")
        Image.fromarray(labels.astype(np.uint8 if top < 256 else np.uint16)).save(buffer,
                                                                                  "PNG")
    else:
        import tifffile

        tifffile.imwrite(buffer, labels, compression="zlib")
    return buffer.getvalue()


def _stage(path: Path, data: bytes) -> Path:
    """``data`` in an owner-only temporary sibling of ``path``, synced to disk."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(data)
            file.flush()
            os.fsync(file.fileno())
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


__all__ = ["NOISY_SUFFIXES", "SIDECAR_SUFFIX", "read_clean_labels", "sidecar_path",
           "write_noisy"]
