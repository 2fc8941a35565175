"""Export tiles and masks as an nnU-Net raw 2D dataset, streamed case by case.

Layout written (nnU-Net's "raw" format for natural 2D images)::

    <dataset_dir>/
      dataset.json              channel_names, labels, numTraining, file_ending, dataset
      imagesTr/<case>_0000.png  RGB in one PNG (no extra channels), or
      imagesTr/<case>_000k.png  one grey PNG per channel k (with extra channels)
      labelsTr/<case>.png       label values 0..C-1, uint8

``dataset.json`` lists every case's files under ``"dataset"`` (so nnU-Net does not scan the
folder) and keeps what pathloop needs later under ``"pathloop"``: the task and the
resolution in µm/px the tiles were cut at. The files are read back only by nnU-Net.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
from PIL import Image

from pathloop.client.segmentation.errors import DatasetError
from pathloop.client.segmentation.task import SegmentationTask

FILE_ENDING = ".png"
DATASET_FORMAT = 1
_CASE_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")


class Case(NamedTuple):
    """One training tile.

    Attributes
    ----------
    name:
        Unique case name (letters, digits, ``._-``), e.g. ``"slide12_x4096_y2048"``.
    image:
        ``(H, W, 3)`` uint8 RGB, axis order rows, columns, channel.
    mask:
        ``(H, W)`` uint8 label values (``0 .. C-1`` of the task's labels).
    extra:
        ``(H, W, E)`` uint8, one plane per extra channel of the task, or ``None``.
    """

    name: str
    image: np.ndarray
    mask: np.ndarray
    extra: np.ndarray | None = None


@dataclass(frozen=True)
class RawDataset:
    """An exported raw dataset folder.

    Attributes
    ----------
    path:
        The dataset folder (holds ``dataset.json``).
    task:
        Labels and channels of the cases.
    mpp:
        Resolution of the tiles in µm/px.
    case_names:
        Names of the cases, in the order they were written.
    """

    path: Path
    task: SegmentationTask
    mpp: float
    case_names: tuple[str, ...]

    @property
    def n_cases(self) -> int:
        """Number of cases."""
        return len(self.case_names)


def export_dataset(
    cases: Iterable[Case | tuple[str, np.ndarray, np.ndarray]],
    dataset_dir: Path | str,
    task: SegmentationTask,
    *,
    mpp: float,
) -> RawDataset:
    """Write cases to an nnU-Net raw 2D dataset folder, one case at a time.

    Parameters
    ----------
    cases:
        :class:`Case` objects or ``(name, image, mask)`` tuples; consumed lazily, so a
        generator over a store keeps memory flat. ``image`` is ``(H, W, 3)`` uint8 RGB,
        ``mask`` is ``(H, W)`` uint8 labels; sizes may differ between cases.
    dataset_dir:
        Folder to create; must not exist or be empty.
    task:
        Labels and channels; every mask value must be one of the task's label values.
    mpp:
        Resolution of the tiles in µm/px (recorded for the model card).

    Returns
    -------
    RawDataset
        The folder and what it holds.

    Raises
    ------
    DatasetError
        A case breaks the contract (shape, dtype, label values, duplicate name), no case
        was given, or the folder is not empty. Files already written stay for inspection.
    """
    if not mpp > 0:
        raise DatasetError(f"mpp must be positive, got {mpp}")
    root = Path(dataset_dir)
    if root.exists() and any(root.iterdir()):
        raise DatasetError(f"{root}: dataset folder is not empty")
    images_dir, labels_dir = root / "imagesTr", root / "labelsTr"
    images_dir.mkdir(parents=True, exist_ok=True)
    labels_dir.mkdir(exist_ok=True)

    entries: dict[str, dict[str, Any]] = {}
    for item in cases:
        case = item if isinstance(item, Case) else Case(*item)
        _check_case(case, task, seen=entries)
        entries[case.name] = _write_case(case, task, images_dir, labels_dir)
    if not entries:
        raise DatasetError(f"{root}: no cases to export")

    _write_dataset_json(root, task, mpp=mpp, entries=entries)
    return RawDataset(path=root, task=task, mpp=float(mpp), case_names=tuple(entries))


def read_dataset(dataset_dir: Path | str) -> RawDataset:
    """Open a dataset folder written by :func:`export_dataset`.

    Raises
    ------
    DatasetError
        ``dataset.json`` is missing or was not written by pathloop.
    """
    root = Path(dataset_dir)
    path = root / "dataset.json"
    try:
        data = json.loads(path.read_text())
        meta = data["pathloop"]
        task = SegmentationTask.from_json(meta["task"])
        return RawDataset(
            path=root, task=task, mpp=float(meta["mpp"]), case_names=tuple(data["dataset"])
        )
    except FileNotFoundError as error:
        raise DatasetError(f"{path}: no dataset.json (not an exported dataset)") from error
    except (KeyError, TypeError, ValueError) as error:
        raise DatasetError(f"{path}: not a pathloop dataset.json ({error!r})") from error


def _write_dataset_json(
    root: Path, task: SegmentationTask, *, mpp: float, entries: dict[str, dict[str, Any]]
) -> None:
    """Write ``dataset.json`` for the cases in ``entries`` (name → relative file paths)."""
    dataset_json = {
        "name": task.name,
        "channel_names": task.nnunet_channel_names(),
        "labels": dict(task.labels),
        "numTraining": len(entries),
        "file_ending": FILE_ENDING,
        "overwrite_image_reader_writer": "NaturalImage2DIO",
        "dataset": entries,
        "pathloop": {"format": DATASET_FORMAT, "task": task.to_json(), "mpp": float(mpp)},
    }
    (root / "dataset.json").write_text(json.dumps(dataset_json, indent=1))


def _check_case(case: Case, task: SegmentationTask, *, seen: dict[str, Any]) -> None:
    name = case.name
    if not isinstance(name, str) or not _CASE_NAME.match(name):
        raise DatasetError(f"case name {name!r}: letters, digits, '.', '_' or '-' only")
    if name in seen:
        raise DatasetError(f"case {name!r} appears twice")
    image, mask = np.asarray(case.image), np.asarray(case.mask)
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise DatasetError(
            f"case {name!r}: image must be (H, W, 3) uint8 RGB, got {image.shape} {image.dtype}"
        )
    if mask.shape != image.shape[:2] or mask.dtype != np.uint8:
        raise DatasetError(
            f"case {name!r}: mask must be {image.shape[:2]} uint8, got {mask.shape} {mask.dtype}"
        )
    present = np.unique(mask)
    if present.size and int(present[-1]) >= task.n_classes:
        raise DatasetError(
            f"case {name!r}: mask values {present.tolist()} outside the task's labels "
            f"{dict(task.labels)}"
        )
    n_extra = len(task.extra_channels)
    if n_extra == 0 and case.extra is not None:
        raise DatasetError(f"case {name!r}: extra channels given but the task has none")
    if n_extra:
        extra = None if case.extra is None else np.asarray(case.extra)
        want = (*image.shape[:2], n_extra)
        if extra is None or extra.shape != want or extra.dtype != np.uint8:
            got = "None" if extra is None else f"{extra.shape} {extra.dtype}"
            raise DatasetError(f"case {name!r}: extra must be {want} uint8, got {got}")


def _write_case(
    case: Case, task: SegmentationTask, images_dir: Path, labels_dir: Path
) -> dict[str, Any]:
    image = np.ascontiguousarray(case.image)
    if task.separate_channel_files:
        assert case.extra is not None  # checked by _check_case
        planes = np.concatenate([image, np.asarray(case.extra)], axis=2)
        files = []
        for k in range(planes.shape[2]):
            file = f"{case.name}_{k:04d}{FILE_ENDING}"
            _save_png(np.ascontiguousarray(planes[:, :, k]), images_dir / file)
            files.append(f"imagesTr/{file}")
    else:
        file = f"{case.name}_0000{FILE_ENDING}"
        _save_png(image, images_dir / file)
        files = [f"imagesTr/{file}"]
    label_file = f"{case.name}{FILE_ENDING}"
    _save_png(np.ascontiguousarray(case.mask), labels_dir / label_file)
    return {"images": files, "label": f"labelsTr/{label_file}"}


def _save_png(array: np.ndarray, path: Path) -> None:
    # compress_level=1: these files are read once by nnU-Net's preprocessing, so speed wins.
    Image.fromarray(array).save(path, compress_level=1)


__all__ = ["FILE_ENDING", "Case", "RawDataset", "export_dataset", "read_dataset"]
