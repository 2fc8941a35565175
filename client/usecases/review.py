"""Use cases of a pathologist reviewing the worklist: masks, saves, undo, accept, keep, skip.

A worklist patch's correction is a thread of versions (see
:mod:`pathloop.client.store.corrections`); every action here appends a version and never
changes one, so any earlier state can be restored and nothing is lost. Each save names the
version it was based on (``base_version``): a save based on a stale version is refused with
:class:`~pathloop.client.errors.ConflictError` and stores nothing.

Masks are ``(H, W)`` uint8 label values covering the patch at its resolution (see
:func:`pathloop.client.usecases.loop.patch_mask_shape`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.typing import NDArray

from pathloop.client.errors import InputError, MaskError, RecordNotFoundError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import (
    CorrectionRecord,
    PatchBox,
    RankedPatchRecord,
    RasterRecord,
    SlideRecord,
    Store,
)
from pathloop.client.store.corrections import WITHDRAWN
from pathloop.client.usecases.loop import patch_mask_shape, save_correction_mask
from pathloop.client.viewing.sampling import sample_raster
from pathloop.client.wsi import resolve_within_roots

ANNOTATION_RASTER = "annotation"
"""Kind of a slide's imported annotation raster (uint8 labels)."""
PREDICTION_RASTER = "prediction"

MaskSource = Literal["latest", "prediction", "annotation", "version"]
Action = Literal["edit", "revert", "accept-prediction", "keep-annotation"]
LabelMask = NDArray[np.uint8]


@dataclass(frozen=True)
class PatchState:
    """A worklist patch with what the viewer needs to edit it.

    Attributes
    ----------
    patch:
        The ranked patch (status, claim, box).
    mask_shape:
        ``(H, W)`` of its label mask.
    version:
        Its correction's latest version (0: never corrected).
    """

    patch: RankedPatchRecord
    mask_shape: tuple[int, int]
    version: int


@dataclass(frozen=True, slots=True)
class _MaskBox(PatchBox):
    """A patch's box and its label mask's size in px: what :func:`sample_raster` reads."""

    out_width: int
    out_height: int


def import_annotation(settings: SiteSettings, store: Store, slide: SlideRecord, path: Path, *,
                      mpp: float | None = None, format: str | None = None) -> RasterRecord:
    """Store an earlier annotation as the slide's annotation (the "keep annotation" source).

    ``path`` must lie inside the slide roots. ``format`` is one of
    :data:`~pathloop.client.annotations.FORMATS` (default: told from the file).

    - ``label-image``: an 8-bit single-channel image (PNG or TIFF) of class labels covering
      the whole slide at ``mpp`` µm/px (required; its size at that resolution, ±1 px for
      rounding) with labels below the site's label count, stored as it is.
    - every other format (instance outlines or masks in level-0 px): each instance is drawn
      with the site label its classification names, else the first label after background,
      into a raster of the whole slide at ``mpp`` (default: the slide's level-0 resolution).

    Raises
    ------
    PathOutsideRootsError, MaskError, InputError
        The file is outside the roots, unreadable, malformed, of the wrong size, mode or
        labels, reaches wholly outside the slide, or holds no instance.
    """
    from pathloop.client.annotations import sniff_format

    resolved = resolve_within_roots(path, settings.slide_roots)
    chosen = format or sniff_format(resolved)
    if chosen != "label-image":
        return _import_instances(settings, store, slide, resolved, chosen, mpp)
    if mpp is None:
        raise MaskError(f"{resolved}: a label image needs its resolution (mpp)")
    from PIL import Image, UnidentifiedImageError

    expected = (slide.width * slide.mpp_x / mpp, slide.height * slide.mpp_y / mpp)
    try:
        with Image.open(resolved) as image:
            if image.mode not in ("L", "P", "1"):
                raise MaskError(f"{resolved}: an annotation must be an 8-bit single-channel "
                                f"image of label values, got mode {image.mode}")
            if any(abs(got - want) > 1 for got, want in zip(image.size, expected, strict=True)):
                raise MaskError(f"{resolved}: {image.size[0]}×{image.size[1]} px, but slide "
                                f"{slide.id} at {mpp} µm/px is {expected[0]:.0f}×"
                                f"{expected[1]:.0f} px")
            labels = np.asarray(image, dtype=np.uint8)
    except (UnidentifiedImageError, OSError) as error:
        raise MaskError(f"{resolved}: not a readable image ({error})") from None
    top = int(labels.max(initial=0))
    if top >= len(settings.federation.labels):
        raise MaskError(f"{resolved}: holds label {top} but the site has "
                        f"{len(settings.federation.labels)} labels")
    return store.rasters.save(labels, slide.id, ANNOTATION_RASTER, mpp=mpp, downsample="mode",
                              attributes={"source": resolved.name})


def _import_instances(settings: SiteSettings, store: Store, slide: SlideRecord, path: Path,
                      format: str, mpp: float | None) -> RasterRecord:
    """Draw an instance annotation's classes into a new annotation raster of the slide."""
    from pathloop.client.annotations import rasterize, read_annotations

    found = read_annotations(path, format=format, image_size=(slide.width, slide.height),
                             mpp=slide.mpp_x)
    if not found.instances:
        raise InputError(f"{path}: holds no instance to import")
    mpp = slide.mpp_x if mpp is None else mpp
    shape = (max(1, round(slide.height * slide.mpp_y / mpp)),
             max(1, round(slide.width * slide.mpp_x / mpp)))
    labels = settings.federation.labels
    values = {i.id: labels.index(i.classification) if i.classification in labels[1:] else 1
              for i in found.instances}
    drawn = rasterize(found.instances, shape, scale=slide.mpp_x / mpp, values=values,
                      dtype=np.uint8)
    return store.rasters.save(drawn, slide.id, ANNOTATION_RASTER, mpp=mpp, downsample="mode",
                              attributes={"source": path.name, "format": format,
                                          "instances": len(found.instances)})


def patch_box(patch: RankedPatchRecord) -> PatchBox:
    """The box a ranked patch's corrections are filed under."""
    return PatchBox(patch.slide_id, patch.x, patch.y, patch.width, patch.height, patch.mpp)


def patch_state(store: Store, patch_id: int) -> PatchState:
    """A ranked patch, its mask size and its latest correction version."""
    patch = store.get_ranked_patch(patch_id)
    return PatchState(patch, patch_mask_shape(store, patch_box(patch)),
                      len(store.correction_history(patch_id)))


def patch_history(store: Store, patch_id: int) -> list[CorrectionRecord]:
    """Every version of a ranked patch's correction, oldest first."""
    store.get_ranked_patch(patch_id)
    return store.correction_history(patch_id)


def patch_mask(store: Store, patch_id: int, source: MaskSource = "latest",
               version: int | None = None) -> LabelMask:
    """A ranked patch's label mask from ``source``.

    ``latest``: the newest correction's mask, else the prediction, else all background;
    ``prediction`` / ``annotation``: the slide's newest raster of that kind under the patch;
    ``version``: correction version ``version`` (0 is the state before any correction, like
    ``latest`` on an uncorrected patch).

    Raises
    ------
    RecordNotFoundError
        No such patch, version, prediction or annotation.
    """
    state = patch_state(store, patch_id)
    box = patch_box(state.patch)
    if source in ("prediction", "annotation"):
        kind = PREDICTION_RASTER if source == "prediction" else ANNOTATION_RASTER
        raster = store.rasters.latest(box.slide_id, kind)
        if raster is None:
            raise RecordNotFoundError(f"slide {box.slide_id} has no {source} raster")
        return _under_patch(store, raster, box, state.mask_shape)
    if source not in ("latest", "version"):
        raise InputError(f"mask source {source!r}: one of latest, prediction, annotation, "
                         "version")
    history = store.correction_history(patch_id)
    if source == "version":
        if version is None or not 0 <= version <= len(history):
            raise RecordNotFoundError(f"patch {patch_id} has versions 0-{len(history)}, "
                                      f"not {version}")
        history = history[:version]
    latest = history[-1] if history else None
    if latest is not None and latest.raster_id is not None:
        return np.asarray(store.rasters.open_raster(latest.raster_id).read(0), dtype=np.uint8)
    prediction = store.rasters.latest(box.slide_id, PREDICTION_RASTER)
    if prediction is None:
        return np.zeros(state.mask_shape, dtype=np.uint8)
    return _under_patch(store, prediction, box, state.mask_shape)


def save_patch_mask(store: Store, patch_id: int, mask: LabelMask, *, author: str,
                    base_version: int, action: Action = "edit",
                    reverted_to: int | None = None) -> CorrectionRecord:
    """Append a version holding ``mask``; the patch becomes ``corrected`` in the worklist."""
    patch = store.get_ranked_patch(patch_id)
    details: dict[str, object] = {"action": action}
    if reverted_to is not None:
        details["reverted_to"] = reverted_to
    return save_correction_mask(store, patch_box(patch), mask, author=author,
                                ranked_patch_id=patch_id, base_version=base_version,
                                details=details)


def revert_patch(store: Store, patch_id: int, *, to_version: int, base_version: int,
                 author: str) -> CorrectionRecord:
    """Append a version equal to ``to_version`` (0: withdraw the correction altogether).

    Withdrawing puts the patch back in the worklist as ``pending``; the versions in between
    stay in the history.
    """
    history = patch_history(store, patch_id)
    if not 0 <= to_version < len(history) + 1:
        raise RecordNotFoundError(f"patch {patch_id} has versions 0-{len(history)}, "
                                  f"not {to_version}")
    if to_version == 0:
        if not history or history[-1].data.get("kind") == WITHDRAWN:
            raise InputError(f"patch {patch_id} has no correction to withdraw")
        record = store.save_correction(
            patch_id, data={"kind": WITHDRAWN, "action": "revert", "reverted_to": 0},
            author=author, base_version=base_version)
        store.set_patch_status(patch_id, "pending", actor=author)
        return record
    mask = patch_mask(store, patch_id, "version", to_version)
    return save_patch_mask(store, patch_id, mask, author=author, base_version=base_version,
                           action="revert", reverted_to=to_version)


def accept_prediction(store: Store, patch_id: int, *, base_version: int, author: str
                      ) -> CorrectionRecord:
    """Append a version holding the model's prediction under the patch, unchanged."""
    mask = patch_mask(store, patch_id, "prediction")
    return save_patch_mask(store, patch_id, mask, author=author, base_version=base_version,
                           action="accept-prediction")


def keep_annotation(store: Store, patch_id: int, *, base_version: int, author: str
                    ) -> CorrectionRecord:
    """Append a version holding the slide's existing annotation under the patch, unchanged.

    Raises
    ------
    RecordNotFoundError
        The slide has no annotation raster.
    """
    mask = patch_mask(store, patch_id, "annotation")
    return save_patch_mask(store, patch_id, mask, author=author, base_version=base_version,
                           action="keep-annotation")


def skip_patch(store: Store, patch_id: int, *, author: str) -> RankedPatchRecord:
    """Leave a patch out of the worklist (``skipped``) and release the author's claim."""
    patch = store.set_patch_status(patch_id, "skipped", actor=author)
    if patch.claimed_by == author:
        patch = store.release_patch(patch_id, author)
    return patch


def _under_patch(store: Store, raster: RasterRecord, box: PatchBox,
                 shape: tuple[int, int]) -> LabelMask:
    slide = store.get_slide(box.slide_id)
    values = sample_raster(store.rasters.open_raster(raster),
                           _MaskBox(box.slide_id, box.x, box.y, box.width, box.height, box.mpp,
                                    shape[1], shape[0]),
                           slide_mpp=slide.mpp_x)
    if values.ndim != 2:
        raise InputError(f"raster {raster.id} ({raster.kind}) is not a label map")
    return np.asarray(values, dtype=np.uint8)
