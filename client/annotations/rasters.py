"""Instances as label arrays: label images and the CPM-15 ASCII masks.

A label image is an ``(H, W)`` integer array, one instance per non-zero id: PNG (8 or 16
bit, single channel), TIFF (first page), ``.npy``, or ``.npz`` (the array named ``labels``, or
the only one). A binary mask (values 0/1 or 0/255, or boolean) is read as its 8-connected
components, one instance each. A CPM-15 mask is text: ``W H`` on the first line, then ``W × H``
integer labels, one per line, x fastest. Sizes are checked before pixels are decoded (at most
:data:`~pathloop.client.annotations.instances.MAX_LABEL_PIXELS`); with a known image size, an
array of another size is refused.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import IO, Any

import numpy as np
from numpy.typing import NDArray

from pathloop.client.annotations.instances import MAX_LABEL_PIXELS, InstanceSet
from pathloop.client.errors import InputError

LABEL_IMAGE_SUFFIXES = (".png", ".tif", ".tiff", ".npy", ".npz")


def read_label_image(path: Path, data: bytes, *, image_size: tuple[int, int] | None,
                     mpp: float | None) -> InstanceSet:
    """The instances of a label image or binary mask (see the module docstring)."""
    labels = _decode(path, data)
    if labels.dtype == np.bool_ or (labels.size and set(np.unique(labels).tolist())
                                    <= {0, 1} | {0, 255}):
        from skimage.measure import label

        labels = label(labels > 0, connectivity=2).astype(np.int32)
    return _instances(path, labels, image_size, mpp)


def read_cpm15(path: Path, data: bytes, *, image_size: tuple[int, int] | None,
               mpp: float | None) -> InstanceSet:
    """The instances of a CPM-15 ASCII label mask (see the module docstring)."""
    header, _, body = data.partition(b"\n")
    try:
        width, height = (int(v) for v in header.split())
    except ValueError:
        raise InputError(f"{path}: the first line must be 'W H' (two integers), got "
                         f"{header[:40]!r}") from None
    _check_pixels(path, width, height)
    try:
        values = np.array(body.split(), dtype=np.int64)
    except ValueError:
        raise InputError(f"{path}: a label is not an integer") from None
    if values.size != width * height:
        raise InputError(f"{path}: {values.size} labels, but the header says {width}×{height} "
                         f"= {width * height}")
    return _instances(path, values.reshape(height, width), image_size, mpp)


def write_label_image(annotations: InstanceSet, file: IO[bytes], suffix: str) -> None:
    """The instances' label array as PNG (ids < 65536), TIFF, ``.npy`` or ``.npz``."""
    labels = annotations.to_labels()
    if suffix == ".png":
        from PIL import Image

        top = int(labels.max(initial=0))
        if top > 65535:
            raise InputError(f"instance id {top} does not fit a 16-bit PNG: write .tif, .npy "
                             "or .npz")
        Image.fromarray(labels.astype(np.uint8 if top < 256 else np.uint16)).save(file, "PNG")
    elif suffix in (".tif", ".tiff"):
        import tifffile

        tifffile.imwrite(file, labels, compression="zlib")
    elif suffix == ".npy":
        np.save(file, labels, allow_pickle=False)
    elif suffix == ".npz":
        np.savez_compressed(file, labels=labels)
    else:
        raise InputError(f"a label image is written as one of {', '.join(LABEL_IMAGE_SUFFIXES)}"
                         f", not {suffix or 'a file without suffix'}")


def write_cpm15(annotations: InstanceSet, file: IO[bytes]) -> None:
    """The instances' label array as a CPM-15 ASCII mask."""
    labels = annotations.to_labels()
    file.write(f"{labels.shape[1]} {labels.shape[0]}\n".encode())
    if labels.size:
        np.savetxt(file, labels.reshape(-1, 1), fmt="%d")


def _decode(path: Path, data: bytes) -> NDArray[Any]:
    suffix = path.suffix.lower()
    if suffix == ".npy":
        return _npy(path, io.BytesIO(data))
    if suffix == ".npz":
        return _npz(path, data)
    if suffix in (".tif", ".tiff"):
        return _tiff(path, data)
    return _png(path, data)


def _png(path: Path, data: bytes) -> NDArray[Any]:
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(io.BytesIO(data)) as image:
            _check_pixels(path, *image.size)
            if image.mode not in ("1", "L", "P", "I", "I;16", "I;16B", "I;16L"):
                raise InputError(f"{path}: a label image must be single-channel, got mode "
                                 f"{image.mode}")
            return np.asarray(image)
    except (UnidentifiedImageError, OSError) as error:
        raise InputError(f"{path}: not a readable image ({error})") from None


def _tiff(path: Path, data: bytes) -> NDArray[Any]:
    import tifffile

    try:
        with tifffile.TiffFile(io.BytesIO(data)) as tiff:
            page = tiff.pages.first
            shape = page.shape
            if len(shape) != 2:
                raise InputError(f"{path}: a label image must be single-channel, got shape "
                                 f"{shape}")
            _check_pixels(path, shape[1], shape[0])
            return np.asarray(page.asarray())
    except (tifffile.TiffFileError, ValueError, OSError) as error:
        raise InputError(f"{path}: not a readable TIFF ({error})") from None


def _npy(path: Path, file: IO[bytes]) -> NDArray[Any]:
    try:
        version = np.lib.format.read_magic(file)
        read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                       else np.lib.format.read_array_header_2_0)
        shape, _, _ = read_header(file)
        if len(shape) != 2:
            raise InputError(f"{path}: a label array must be 2-D, got shape {shape}")
        _check_pixels(path, shape[1], shape[0])
        file.seek(0)
        return np.load(file, allow_pickle=False)
    except (ValueError, OSError, EOFError) as error:
        raise InputError(f"{path}: not a readable .npy array ({error})") from None


def _npz(path: Path, data: bytes) -> NDArray[Any]:
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            names = [n.removesuffix(".npy") for n in archive.namelist()]
            name = "labels" if "labels" in names else (names[0] if len(names) == 1 else None)
            if name is None:
                raise InputError(f"{path}: holds {len(names)} arrays ({', '.join(names[:5])}) "
                                 "and none named 'labels'")
            info = archive.getinfo(f"{name}.npy")
            if info.file_size > 8 * MAX_LABEL_PIXELS + 4096:  # decompressed size: a zip bomb
                raise InputError(f"{path}: array {name!r} unpacks to {info.file_size} bytes, "
                                 "more than a label array may have")
            return _npy(path, io.BytesIO(archive.read(info)))
    except (zipfile.BadZipFile, KeyError, OSError) as error:
        raise InputError(f"{path}: not a readable .npz archive ({error})") from None


def _check_pixels(path: Path, width: int, height: int) -> None:
    if width < 0 or height < 0 or width * height > MAX_LABEL_PIXELS:
        raise InputError(f"{path}: a {width}×{height} px label array is beyond the "
                         f"{MAX_LABEL_PIXELS} px limit")


def _instances(path: Path, labels: NDArray[Any], image_size: tuple[int, int] | None,
               mpp: float | None) -> InstanceSet:
    if labels.ndim != 2 or not (np.issubdtype(labels.dtype, np.integer)
                                or labels.dtype == np.bool_):
        raise InputError(f"{path}: a label array must be 2-D integers, got {labels.ndim}-D "
                         f"{labels.dtype}")
    height, width = labels.shape
    if image_size is not None and (width, height) != tuple(image_size):
        raise InputError(f"{path}: labels are {width}×{height} px, the image "
                         f"{image_size[0]}×{image_size[1]} px")
    if labels.size and int(labels.min()) < 0:
        raise InputError(f"{path}: holds negative labels")
    found = InstanceSet.from_labels(labels.astype(np.int64, copy=False), mpp=mpp,
                                   source=str(path))
    return InstanceSet(found.instances, (width, height), mpp)
