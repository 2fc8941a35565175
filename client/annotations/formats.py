"""Reading and writing every annotation format by name, and telling them apart."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path
from typing import IO

from pathloop.client.annotations._files import MAX_FILE_BYTES, read_bytes, write_atomically
from pathloop.client.annotations.asap import read_asap, write_asap
from pathloop.client.annotations.dsa import read_dsa, write_dsa
from pathloop.client.annotations.geojson import read_geojson, write_geojson
from pathloop.client.annotations.imagescope import read_imagescope, write_imagescope
from pathloop.client.annotations.instances import InstanceSet
from pathloop.client.annotations.rasters import (
    LABEL_IMAGE_SUFFIXES,
    read_cpm15,
    read_label_image,
    write_cpm15,
    write_label_image,
)
from pathloop.client.errors import InputError

FORMATS = ("imagescope-xml", "asap-xml", "geojson", "dsa-json", "cpm15-mask", "label-image")
"""Every format :func:`read_annotations` and :func:`write_annotations` know."""

_Reader = Callable[..., InstanceSet]
_READERS: dict[str, _Reader] = {
    "imagescope-xml": read_imagescope, "asap-xml": read_asap, "geojson": read_geojson,
    "dsa-json": read_dsa, "cpm15-mask": read_cpm15, "label-image": read_label_image,
}
_PEEK = 65536
_DSA_KEY = re.compile(r'"(elements|annotation)"\s*:')


def read_annotations(path: Path | str, *, format: str | None = None,
                     image_size: tuple[int, int] | None = None,
                     mpp: float | None = None) -> InstanceSet:
    """The instances of an annotation file, in level-0 px of its image.

    Parameters
    ----------
    path:
        The file (at most 512 MiB).
    format:
        One of :data:`FORMATS`; ``None`` tells it from the file (:func:`sniff_format`).
    image_size:
        ``(width, height)`` of the image, when known: outlines reaching outside it are
        clipped (with a warning), outlines wholly outside it and label arrays of another size
        are refused.
    mpp:
        µm/px of the coordinates; else what the file says (ImageScope), else unknown.

    Raises
    ------
    InputError
        Unknown format; the file missing, too big, malformed, or breaking a limit; each names
        the file and what was wrong.
    """
    path = Path(path)
    chosen = sniff_format(path) if format is None else _known(format)
    return _READERS[chosen](path, read_bytes(path, limit=MAX_FILE_BYTES),
                            image_size=image_size, mpp=mpp)


def write_annotations(annotations: InstanceSet, path: Path | str, *, format: str) -> Path:
    """Write instances in ``format`` atomically (temporary file, then rename; mode 0o600).

    A label image's kind follows the suffix (``.png``, ``.tif``, ``.npy``, ``.npz``).
    Nothing is left at ``path`` when writing fails, and an older file there stays whole.
    """
    path = Path(path)
    chosen = _known(format)
    writers: dict[str, Callable[[IO[bytes]], None]] = {
        "imagescope-xml": lambda f: write_imagescope(annotations, f),
        "asap-xml": lambda f: write_asap(annotations, f),
        "geojson": lambda f: write_geojson(annotations, f),
        "dsa-json": lambda f: write_dsa(annotations, f),
        "cpm15-mask": lambda f: write_cpm15(annotations, f),
        "label-image": lambda f: write_label_image(annotations, f, path.suffix.lower()),
    }
    if chosen == "label-image" and path.suffix.lower() not in LABEL_IMAGE_SUFFIXES:
        raise InputError(f"{path}: a label image is written as one of "
                         f"{', '.join(LABEL_IMAGE_SUFFIXES)}")
    return write_atomically(path, writers[chosen])


def sniff_format(path: Path | str) -> str:
    """The format of an annotation file, from its suffix and its first 64 KiB.

    Raises
    ------
    InputError
        The file is unreadable or in none of :data:`FORMATS`.
    """
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix in LABEL_IMAGE_SUFFIXES:
        return "label-image"
    try:
        with path.open("rb") as file:
            head = file.read(_PEEK)
    except OSError as error:
        raise InputError(f"{path}: not readable ({error.strerror or error})") from None
    text = head.decode("utf-8", errors="replace").lstrip("\ufeff \t\r\n")
    if text.startswith("<"):
        if "<ASAP_Annotations" in text:
            return "asap-xml"
        if "<Annotations" in text:
            return "imagescope-xml"
    elif text.startswith(("{", "[")):
        if _DSA_KEY.search(text):
            return "dsa-json"
        if '"Feature' in text or '"geometry"' in text:
            return "geojson"
    elif suffix == ".txt" and text.split("\n", 1)[0].replace(" ", "").isdigit():
        return "cpm15-mask"
    raise InputError(f"{path}: not an annotation file this node reads (formats: "
                     f"{', '.join(FORMATS)})")


def _known(format: str) -> str:
    if format not in FORMATS:
        raise InputError(f"annotation format {format!r}: one of {', '.join(FORMATS)}")
    return format
