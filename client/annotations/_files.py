"""Bounded reads, XML without document types, and atomic owner-only writes."""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

from pathloop.client.errors import InputError

MAX_FILE_BYTES = 512 * 2**20
"""The largest annotation file read (512 MiB); larger ones are refused before decoding."""


def read_bytes(path: Path, *, limit: int = MAX_FILE_BYTES) -> bytes:
    """A file's bytes, refused with :class:`InputError` when missing, unreadable or too big."""
    try:
        size = path.stat().st_size
        if size > limit:
            raise InputError(f"{path}: {size} bytes, more than the {limit} byte limit for "
                             "an annotation file")
        return path.read_bytes()
    except OSError as error:
        raise InputError(f"{path}: not readable ({error.strerror or error})") from None


def parse_xml(path: Path, data: bytes, what: str) -> ET.Element:
    """The root element of ``what`` (e.g. "ASAP XML"), an XML document without DOCTYPE.

    Document types are where entity expansion ("billion laughs") and external entities
    live; annotation files never need one, so any declaration is refused before parsing.
    """
    text = data.decode("utf-16") if data[:2] in (b"\xff\xfe", b"\xfe\xff") else data
    probe = text.upper() if isinstance(text, str) else text.upper().decode("latin-1")
    if "<!DOCTYPE" in probe or "<!ENTITY" in probe:
        raise InputError(f"{path}: XML with a DOCTYPE or ENTITY declaration is refused")
    try:
        return ET.fromstring(text)
    except ET.ParseError as error:
        raise InputError(f"{path}: not a readable {what} file (malformed XML: {error})"
                         ) from None


def write_atomically(path: Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Write a file through ``write`` into a temporary sibling, then rename it into place.

    The file is readable by its owner only (0o600); on any error the temporary file is
    removed and an existing file at ``path`` is left as it was.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, staged = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o600)
        with os.fdopen(fd, "wb") as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        os.replace(staged, path)
    except BaseException:
        Path(staged).unlink(missing_ok=True)
        raise
    return path
