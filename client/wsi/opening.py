"""Opening slides safely: roots check, format sniffing, integrity check, backend choice.

Every way a slide file can be unusable ends here as one :class:`SlideError` subclass whose
message names the file and the reason, before anything is stored.
"""

from __future__ import annotations

import hashlib
import logging
import struct
from pathlib import Path

import openslide
import tifffile

from pathloop.client.errors import (
    CorruptSlideError,
    PathOutsideRootsError,
    SlideError,
    SlideNotFoundError,
    UnsupportedSlideError,
)
from pathloop.client.wsi.backends import OpenSlideSource, TiffSlideSource
from pathloop.client.wsi.plain import PlainImageSource, is_plain_image
from pathloop.client.wsi.reader import Slide

logger = logging.getLogger(__name__)

_TIFF_MAGICS = (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")
_PROBE = 64


def resolve_within_roots(path: Path | str, roots: tuple[Path, ...] | list[Path]) -> Path:
    """Resolve ``path`` (symlinks included) and check it lies inside one of ``roots``.

    Raises
    ------
    PathOutsideRootsError
        When no root contains the resolved path (or no root is configured).
    """
    resolved = Path(path).expanduser().resolve()
    for root in roots:
        if resolved.is_relative_to(Path(root).resolve()):
            return resolved
    raise PathOutsideRootsError(path, list(roots))


def open_slide(path: Path | str, *, mpp: float | None = None) -> Slide:
    """Open a slide with OpenSlide, or tiffslide where OpenSlide refuses a TIFF; a PNG or
    JPEG as a one-level plain image (:mod:`pathloop.client.wsi.plain`).

    Parameters
    ----------
    path:
        The slide file (any format OpenSlide reads, DICOM included; PNG and JPEG).
    mpp:
        Level-0 resolution in µm/px to use instead of the file's (for slides without one;
        always needed for a plain image, which has none).

    Raises
    ------
    SlideNotFoundError, CorruptSlideError, UnsupportedSlideError
        With the file and the reason in the message.
    """
    path = Path(path)
    if not path.exists():
        raise SlideNotFoundError(path, "no such file")
    if not path.is_file():
        raise SlideNotFoundError(path, "not a regular file")
    size = path.stat().st_size
    if size == 0:
        raise CorruptSlideError(path, "the file is empty (0 bytes)")
    head = _read_head(path)
    if head.startswith(_TIFF_MAGICS):
        _check_tiff_integrity(path, size)
    source: OpenSlideSource | TiffSlideSource | PlainImageSource
    if is_plain_image(head):
        source = PlainImageSource(path)
        return Slide(source.metadata(path, mpp), source)
    try:
        source = OpenSlideSource(path)
    except openslide.OpenSlideUnsupportedFormatError:
        source = _fallback(path, head, "OpenSlide does not recognise the format")
    except openslide.OpenSlideError as error:
        source = _fallback(path, head, f"OpenSlide refuses it: {error}")
    try:
        metadata = source.metadata(path, mpp)
    except Exception as error:  # a backend that opened the file but cannot describe it
        source.close()
        raise CorruptSlideError(path, f"unreadable slide metadata ({error})") from None
    slide = Slide(metadata, source)
    _probe(slide)
    return slide


def _read_head(path: Path) -> bytes:
    try:
        with path.open("rb") as handle:
            return handle.read(256)
    except OSError as error:
        raise SlideError(path, f"cannot be read ({error.strerror})") from None


def _fallback(path: Path, head: bytes, reason: str) -> TiffSlideSource:
    if head.startswith(_TIFF_MAGICS):
        try:
            return TiffSlideSource(path)
        except Exception as error:  # tiffslide raises assorted errors on odd TIFFs
            raise UnsupportedSlideError(
                path, f"unsupported TIFF layout ({reason}; tiffslide: {error})"
            ) from None
    if head[128:132] == b"DICM":
        raise UnsupportedSlideError(path, f"unsupported DICOM slide ({reason})")
    raise UnsupportedSlideError(path, f"not a slide format pathloop can read ({_describe(head)})")


def _describe(head: bytes) -> str:
    """A short description of what a non-slide file looks like."""
    sample = head[:64]
    if sample and all(32 <= b < 127 or b in (9, 10, 13) for b in sample):
        return "it looks like a text file"
    return f"unknown file signature {sample[:8].hex(' ')}"


def _ifd_chain_end(path: Path, size: int) -> int | None:
    """Walk the chain of TIFF directories; return an offset past the file's end, if any.

    tifffile only warns about a broken chain (and then shows fewer pages), so the chain is
    followed here by hand: classic and BigTIFF, either byte order.
    """
    with path.open("rb") as handle:
        header = handle.read(16)
        order = "<" if header[:2] == b"II" else ">"
        big = header[2:4] in (b"+\x00", b"\x00+")
        if big:
            offset = struct.unpack(order + "Q", header[8:16])[0]
            count_fmt, entry_size, next_fmt = "Q", 20, "Q"
        else:
            offset = struct.unpack(order + "I", header[4:8])[0]
            count_fmt, entry_size, next_fmt = "H", 12, "I"
        seen: set[int] = set()
        while offset and offset not in seen:
            seen.add(offset)
            count_size = struct.calcsize(count_fmt)
            if offset + count_size > size:
                return offset
            handle.seek(offset)
            (count,) = struct.unpack(order + count_fmt, handle.read(count_size))
            next_at = offset + count_size + count * entry_size
            next_size = struct.calcsize(next_fmt)
            if next_at + next_size > size:
                return next_at + next_size
            handle.seek(next_at)
            (offset,) = struct.unpack(order + next_fmt, handle.read(next_size))
    return None


def _check_tiff_integrity(path: Path, size: int) -> None:
    """Refuse TIFFs whose directories or tile data point past the end of the file."""
    past_end = _ifd_chain_end(path, size)
    if past_end is not None:
        raise CorruptSlideError(path, _truncated(past_end, size))
    try:
        with tifffile.TiffFile(path) as tiff:
            pages = list(tiff.pages)
            for page in pages:
                if not isinstance(page, tifffile.TiffPage):
                    continue
                for subifd in page.subifds or ():
                    if subifd >= size:
                        raise CorruptSlideError(path, _truncated(subifd, size))
                ends = [o + c for o, c in zip(page.dataoffsets, page.databytecounts, strict=False)
                        if c]
                if ends and max(ends) > size:
                    raise CorruptSlideError(path, _truncated(max(ends), size))
    except CorruptSlideError:
        raise
    except tifffile.TiffFileError as error:
        text = str(error)
        if "offset" in text:
            raise CorruptSlideError(path, f"truncated or damaged TIFF ({_clean(text)}; "
                                          f"the file has {size} bytes)") from None
        raise CorruptSlideError(path, f"damaged TIFF ({_clean(text)})") from None
    except (ValueError, OSError, IndexError) as error:
        raise CorruptSlideError(path, f"damaged TIFF ({error})") from None


def _truncated(offset: int, size: int) -> str:
    return f"truncated: data expected up to byte {offset} but the file has {size} bytes"


def _clean(text: str) -> str:
    return text.split("> ", 1)[-1]


def _probe(slide: Slide) -> None:
    """Decode one small region of the coarsest level so broken pixel data fails now."""
    meta = slide.metadata
    level = meta.level_count - 1
    width, height = meta.level_dimensions[level]
    try:
        slide._source.read_level(level, 0, 0, min(_PROBE, width), min(_PROBE, height))
    except Exception as error:  # backends raise many kinds of decode errors
        slide.close()
        raise CorruptSlideError(meta.path, f"pixel data cannot be decoded ({error})") from None


def sha256_of_file(path: Path, *, chunk_bytes: int = 1 << 22) -> str:
    """Hex SHA-256 of a file, read in chunks (content identity of a slide)."""
    digest = hashlib.sha256()
    with path.open("rb", buffering=0) as handle:
        while block := handle.read(chunk_bytes):
            digest.update(block)
    return digest.hexdigest()
