"""The K fold networks of a model folder, loaded once, predicting batches of tiles.

:class:`Ensemble` is the real :class:`~pathloop.client.segmentation.protocol.FoldPredictor`.
It differs from nnU-Net's predictor on purpose:

- every fold's softmax is returned separately (nnU-Net averages the folds' logits), since
  the folds' disagreement is the uncertainty pathloop ranks patches by;
- a tile is one forward pass of each network, batched, in memory: no files, no sliding
  window inside a tile (slide inference slides windows of the patch size over the slide,
  :mod:`pathloop.client.inference`), no mirroring;
- each fold's network is built once at :meth:`Ensemble.load` and kept.

Inputs are normalised exactly as nnU-Net preprocessed the training cases (per tile, per
channel; see :mod:`pathloop.client.segmentation.normalization`). Tiles whose sides are not
multiples of the network's total stride, or smaller than the training patch, are padded
with the normalised value 0 on both sides, the odd pixel below and right, exactly as
nnU-Net's predictor pads (``acvl_utils``' ``pad_nd_image``), and the output is cropped
back. A tile no larger than the patch therefore gives each fold what nnU-Net's sliding
window gives it (``tests/segmentation/test_nnunet_equivalence.py`` pins this).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from nnunetv2.utilities.get_network_from_plans import get_network_from_plans
from numpy.typing import NDArray

from pathloop.client.segmentation.checkpoints import load_checkpoint
from pathloop.client.segmentation.devices import autocast_dtype, torch_device
from pathloop.client.segmentation.errors import (
    ArrayInputError,
    MissingFoldError,
    ModelError,
    PlansMismatchError,
)
from pathloop.client.segmentation.model_card import (
    DATASET_JSON_NAME,
    PLANS_NAME,
    ModelCard,
    checkpoint_path,
)
from pathloop.client.segmentation.normalization import SUPPORTED_SCHEMES, normalize_batch
from pathloop.client.segmentation.task import SegmentationTask
from pathloop.client.settings import Precision

logger = logging.getLogger(__name__)

# Pixels per forward pass when the caller gives no batch size. On a 2-core CPU (1 MiB of L2
# per core) the tiny network runs fastest at 4-8 windows of 128² per pass: 5.4 ms per window
# and fold at 8 against 7.0 ms at 16 (median of 5 alternating runs); a pass of 16 windows
# makes each full-resolution activation 8 MiB and spills the caches.
PIXELS_PER_PASS = 256 * 512
_IMPORTABLE_PREFIXES = ("dynamic_network_architectures.", "torch.nn.")


class Ensemble:
    """The folds of one model folder, ready to predict.

    Build with :meth:`load`. Not thread-safe for concurrent :meth:`predict_folds` calls on
    a GPU; on the CPU torch parallelises each call over its intra-op threads.
    """

    def __init__(self, model_dir: Path, card: ModelCard, networks: Sequence[torch.nn.Module],
                 schemes: Sequence[str], total_stride: tuple[int, int],
                 spatial_axes: tuple[int, int], device: torch.device,
                 autocast: torch.dtype | None = None) -> None:
        self.model_dir = model_dir
        self.card = card
        self._networks = list(networks)
        self._schemes = tuple(schemes)
        self._total_stride = total_stride
        self._spatial_axes = spatial_axes
        self._device = device
        self._autocast = autocast

    @classmethod
    def load(cls, model_dir: Path | str, device: str = "cpu",
             precision: Precision = "auto") -> Ensemble:
        """Load and check every fold of a model folder.

        Parameters
        ----------
        model_dir:
            A folder written by :func:`~pathloop.client.segmentation.training.train_ensemble`.
        device:
            Torch device to predict on (``"cpu"``, ``"cuda"``, …).
        precision:
            ``"auto"``, ``"float32"`` or ``"bfloat16"``; see
            :data:`~pathloop.client.settings.Precision`.

        Raises
        ------
        ModelError
            No folder, no or bad card, plans or dataset.json, or an unsupported plan.
        MissingFoldError
            A fold listed in the card has no ``fold_<k>/checkpoint_final.pth``.
        PlansMismatchError
            A checkpoint's weights do not fit the network ``plans.json`` describes (loaded
            strictly: every key and shape must match).
        ConfigError
            The device does not exist, or an unknown precision.
        """
        root = Path(model_dir)
        card = ModelCard.read(root)
        for fold in card.folds:
            path = checkpoint_path(root, fold)
            if not path.is_file():
                raise MissingFoldError(root, fold, path)
        plans = _read_json(root / PLANS_NAME)
        dataset_json = _read_json(root / DATASET_JSON_NAME)
        configuration = _configuration(root, plans, card)
        schemes = _check_channels(root, configuration, dataset_json, card.task)
        device_ = torch_device(device)
        autocast = autocast_dtype(precision, device_)
        architecture = configuration["architecture"]
        networks = []
        for fold in card.folds:
            path = checkpoint_path(root, fold)
            try:
                network = get_network_from_plans(
                    architecture["network_class_name"], dict(architecture["arch_kwargs"]),
                    architecture["_kw_requires_import"], len(card.task.channels),
                    card.task.n_classes, allow_init=False, deep_supervision=False,
                )
            except Exception as error:
                raise ModelError(root / PLANS_NAME,
                                 f"cannot build the network: {error!r}") from None
            weights = load_checkpoint(path)["network_weights"]
            try:
                network.load_state_dict(weights, strict=True)
            except RuntimeError as error:
                raise PlansMismatchError(path, root / PLANS_NAME,
                                         _mismatch_summary(error)) from None
            networks.append(network.to(device_).eval())
        strides = np.prod(np.asarray(architecture["arch_kwargs"]["strides"]), axis=0)
        spatial = tuple(int(a) - 1 for a in plans.get("transpose_forward", [0, 1, 2])[1:])
        logger.info("loaded %d folds from %s on %s in %s", len(networks), root, device_,
                    autocast or torch.float32)
        return cls(root, card, networks, schemes, (int(strides[0]), int(strides[1])),
                   (spatial[0], spatial[1]), device_, autocast)

    @property
    def n_folds(self) -> int:
        """Number of folds K."""
        return len(self._networks)

    @property
    def n_classes(self) -> int:
        """Number of classes C, background (0) included."""
        return self.card.task.n_classes

    @property
    def label_names(self) -> tuple[str, ...]:
        """Class names by class index."""
        return self.card.task.label_names

    @property
    def task(self) -> SegmentationTask:
        """Labels and input channels."""
        return self.card.task

    @property
    def mpp(self) -> float:
        """Resolution in µm/px of the training tiles: read tiles at it."""
        return self.card.mpp

    @property
    def patch_size(self) -> tuple[int, int]:
        """Training patch (rows, columns) in pixels at :attr:`mpp`."""
        return self.card.patch_size

    @property
    def total_stride(self) -> tuple[int, int]:
        """Tiles whose sides are multiples of this (rows, columns) need no padding."""
        return self._total_stride

    @property
    def device(self) -> torch.device:
        """Where the networks live."""
        return self._device

    @property
    def precision(self) -> str:
        """``"float32"`` or ``"bfloat16"``: what the forward passes compute in."""
        return "bfloat16" if self._autocast == torch.bfloat16 else "float32"

    def predict_folds(self, images: NDArray[np.uint8], extra: NDArray[np.uint8] | None = None,
                      *, batch_size: int | None = None) -> NDArray[np.float32]:
        """Every fold's softmax for a batch of tiles.

        Parameters
        ----------
        images:
            ``(B, H, W, 3)`` uint8 RGB tiles at :attr:`mpp` µm/px (batch, rows, columns,
            channel); any ``H, W >= 1``.
        extra:
            ``(B, H, W, E)`` uint8 extra input channels, required exactly when the task has
            ``E > 0`` extra channels (e.g. the upgrade network's low-quality mask).
        batch_size:
            Tiles per forward pass; default: as many as fit in :data:`PIXELS_PER_PASS`
            (at least one). Bounds memory and sets speed; does not change results.

        Returns
        -------
        numpy.ndarray
            ``(K, B, C, H, W)`` float32 softmax of each fold; sums to 1 over ``C``.

        Raises
        ------
        ArrayInputError
            Wrong shape or dtype of ``images`` or ``extra``.
        """
        return self._forward(images, extra, batch_size=batch_size, stats=None, softmax=True)

    def predict_logits(self, images: NDArray[np.uint8], extra: NDArray[np.uint8] | None = None,
                       *, stats: NDArray[np.float64] | None = None,
                       batch_size: int | None = None) -> NDArray[np.float32]:
        """Every fold's logits for a batch of tiles (:meth:`predict_folds` before softmax).

        ``stats`` (``(2, channels)`` mean and standard deviation) replace each tile's own
        statistics for the channels nnU-Net z-scores; see
        :func:`~pathloop.client.segmentation.normalization.normalize_batch`.
        """
        return self._forward(images, extra, batch_size=batch_size, stats=stats, softmax=False)

    def _forward(self, images: NDArray[np.uint8], extra: NDArray[np.uint8] | None, *,
                 batch_size: int | None, stats: NDArray[np.float64] | None,
                 softmax: bool) -> NDArray[np.float32]:
        stacked = self._check_inputs(images, extra)
        n, height, width = stacked.shape[:3]
        out = np.empty((self.n_folds, n, self.n_classes, height, width), np.float32)
        step = max(1, PIXELS_PER_PASS // (height * width) if batch_size is None
                   else int(batch_size))
        with torch.inference_mode(), torch.autocast(self._device.type, dtype=self._autocast,
                                                    enabled=self._autocast is not None):
            for start in range(0, n, step):
                chunk = normalize_batch(stacked[start:start + step], self._schemes, stats=stats)
                x = self._to_network_layout(torch.from_numpy(chunk))
                x = x.to(self._device)
                for k, network in enumerate(self._networks):
                    y = network(x).float()
                    if softmax:
                        y = torch.softmax(y, dim=1)
                    out[k, start:start + step] = self._from_network_layout(
                        y, height, width).cpu().numpy()
        return out

    def _check_inputs(self, images: Any, extra: Any) -> NDArray[Any]:
        if not isinstance(images, np.ndarray):
            raise ArrayInputError("images", "a numpy array (B, H, W, 3) uint8",
                                  type(images).__name__)
        if images.ndim != 4 or images.shape[3] != 3 or images.dtype != np.uint8 \
                or 0 in images.shape:
            raise ArrayInputError("images", "(B, H, W, 3) uint8 RGB with B, H, W >= 1",
                                  f"{images.shape} {images.dtype}")
        n_extra = len(self.card.task.extra_channels)
        if n_extra == 0:
            if extra is not None:
                raise ArrayInputError("extra", "None (the model has no extra channels)",
                                      "an array")
            return images
        want = (*images.shape[:3], n_extra)
        if not isinstance(extra, np.ndarray) or extra.shape != want or extra.dtype != np.uint8:
            got = "None" if extra is None else (
                f"{extra.shape} {extra.dtype}" if isinstance(extra, np.ndarray)
                else type(extra).__name__)
            raise ArrayInputError("extra", f"{want} uint8", got)
        return np.concatenate([images, extra], axis=3)

    def _to_network_layout(self, x: torch.Tensor) -> torch.Tensor:
        """(N, C, H, W) → nnU-Net's axis order, padded as nnU-Net's predictor pads.

        Sides grow to multiples of the total stride and to at least the training patch
        (instance norm needs more than one value per channel at the bottleneck), the
        padding split evenly around the tile with the odd pixel after it.
        """
        if self._spatial_axes == (1, 0):
            x = x.transpose(2, 3)
        (top, bottom), (left, right) = self._padding(x.shape[2], x.shape[3])
        if top or bottom or left or right:
            x = torch.nn.functional.pad(x, (left, right, top, bottom), value=0.0)
        return x.contiguous()

    def _from_network_layout(self, y: torch.Tensor, height: int, width: int) -> torch.Tensor:
        if self._spatial_axes == (1, 0):
            (top, _), (left, _) = self._padding(width, height)
            return y[:, :, top:top + width, left:left + height].transpose(2, 3)
        (top, _), (left, _) = self._padding(height, width)
        return y[:, :, top:top + height, left:left + width]

    def _padding(self, rows: int, cols: int) -> tuple[tuple[int, int], tuple[int, int]]:
        """(before, after) padding of each axis, in nnU-Net's axis order."""
        patch = self.card.patch_size  # like the strides, already in nnU-Net's axis order
        pads = []
        for size, stride, least in ((rows, self._total_stride[0], patch[0]),
                                    (cols, self._total_stride[1], patch[1])):
            grow = max(size + -size % stride, least) - size
            pads.append((grow // 2, grow - grow // 2))
        return pads[0], pads[1]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except FileNotFoundError:
        raise ModelError(path.parent, f"incomplete model folder (no {path.name})") from None
    except (OSError, ValueError) as error:
        raise ModelError(path, f"unreadable ({error})") from None
    if not isinstance(data, dict):
        raise ModelError(path, "not a JSON object")
    return data


def _configuration(root: Path, plans: dict[str, Any], card: ModelCard) -> dict[str, Any]:
    try:
        configuration: dict[str, Any] = plans["configurations"][card.configuration]
        architecture = configuration["architecture"]
        missing = [k for k in ("network_class_name", "arch_kwargs", "_kw_requires_import")
                   if k not in architecture]
        if missing:
            raise KeyError(", ".join(missing))
        _check_importable_names(root, architecture)
        strides = np.asarray(architecture["arch_kwargs"]["strides"])
    except (KeyError, TypeError) as error:
        raise ModelError(root / PLANS_NAME,
                         f"no usable {card.configuration!r} configuration ({error!r})") from None
    if strides.ndim != 2 or strides.shape[1] != 2:
        raise ModelError(root / PLANS_NAME, f"not a 2D network (strides {strides.tolist()})")
    return configuration


def _check_importable_names(root: Path, architecture: dict[str, Any]) -> None:
    """Refuse plans naming classes outside the network libraries.

    nnU-Net imports the network class and the ``_kw_requires_import`` arguments by dotted
    name from the plans and calls them: a crafted plans.json could name any callable.
    """
    names = [architecture["network_class_name"]]
    kwargs = architecture["arch_kwargs"]
    names += [kwargs.get(key) for key in architecture["_kw_requires_import"]]
    for name in names:
        if name is None:
            continue
        if not isinstance(name, str) or not name.startswith(_IMPORTABLE_PREFIXES):
            allowed = ", ".join(_IMPORTABLE_PREFIXES)
            raise ModelError(root / PLANS_NAME,
                             f"refusing to import {name!r} named by the plans ({allowed} only)")


def _check_channels(root: Path, configuration: dict[str, Any], dataset_json: dict[str, Any],
                    task: SegmentationTask) -> list[str]:
    schemes = list(configuration.get("normalization_schemes", []))
    n_channels = len(task.channels)
    if len(schemes) != n_channels or len(dataset_json.get("channel_names", {})) != n_channels:
        raise ModelError(root, f"plans, dataset.json and the card disagree on the number of "
                               f"input channels (card: {n_channels})")
    if any(configuration.get("use_mask_for_norm", [])):
        raise ModelError(root / PLANS_NAME, "use_mask_for_norm is not supported for tiles")
    unsupported = sorted(set(schemes) - set(SUPPORTED_SCHEMES))
    if unsupported:
        raise ModelError(root / PLANS_NAME, f"unsupported normalisation {unsupported}")
    labels = {str(k): v for k, v in dataset_json.get("labels", {}).items()}
    if labels != dict(task.labels):
        raise ModelError(root / DATASET_JSON_NAME,
                         f"labels {labels} differ from the card's {dict(task.labels)}")
    return schemes


def _mismatch_summary(error: RuntimeError) -> str:
    """The first few lines of torch's load_state_dict complaint."""
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    summary = "; ".join(lines[1:4]) if len(lines) > 1 else (lines[0] if lines else "")
    return summary[:400]


__all__ = ["PIXELS_PER_PASS", "Ensemble"]
