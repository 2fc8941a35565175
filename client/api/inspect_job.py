"""The ``inspect`` job: an AI²Seg inspection run on an image set or a slide's regions.

Parameters (checked before the job is queued; every path must lie inside the slide roots,
the API never reads a file elsewhere):

- an image set: ``images`` (a folder), ``mpp`` (µm/px), optionally ``annotations`` (a
  folder; default the images') and ``format``;
- a slide's regions: the job's ``slide_id`` and ``regions`` (the annotation file);
- the model: ``model`` (a model folder inside the slide roots or the site's data folder),
  or ``train: true`` to train one on the annotations first (the site's ``[federation]
  profile``, ``epochs`` at most ``[jobs] max-train-epochs``) into the data folder;
- ``alpha`` and ``gamma`` in [0, 1] (default 0).
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pathloop.client.api.jobs import Job, Progress
from pathloop.client.errors import InputError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import SlideRecord, Store
from pathloop.client.wsi import resolve_within_roots

_KEYS = ("images", "annotations", "format", "mpp", "regions", "model", "train", "epochs",
         "alpha", "gamma", "name")


def check_inspect(settings: SiteSettings, store: Store, slide: SlideRecord | None,
                  params: Mapping[str, Any]) -> dict[str, Any]:
    """The parameters with paths resolved inside the roots and defaults filled in."""
    from pathloop.client.annotations import FORMATS

    unknown = sorted(set(params) - set(_KEYS))
    if unknown:
        raise InputError(f"job parameter {unknown[0]!r} is not one of an inspect job's "
                         f"(it takes {', '.join(repr(k) for k in _KEYS)})")
    checked: dict[str, Any] = {}
    if slide is None:
        checked["images"] = _folder(settings, params, "images", required=True)
        checked["annotations"] = _folder(settings, params, "annotations", required=False)
        mpp = params.get("mpp")
        if not isinstance(mpp, int | float) or isinstance(mpp, bool) \
                or not math.isfinite(mpp) or not mpp > 0:
            raise InputError(f"job parameter 'mpp' must be a positive number (µm/px of the "
                             f"images), got {mpp!r}")
        checked["mpp"] = float(mpp)
    else:
        if "images" in params:
            raise InputError("an inspect job takes a slide_id with 'regions', or 'images', "
                             "not both")
        regions = params.get("regions")
        if not isinstance(regions, str):
            raise InputError("job parameter 'regions' (the slide's annotation file) is "
                             "needed with a slide_id")
        path = resolve_within_roots(regions, settings.slide_roots)
        if not path.is_file():
            raise InputError(f"job parameter 'regions': {path} is not a file")
        checked["regions"] = str(path)
    annotation_format = params.get("format")
    if annotation_format is not None and annotation_format not in FORMATS:
        raise InputError(f"job parameter 'format' must be one of {', '.join(FORMATS)}, got "
                         f"{annotation_format!r}")
    checked["format"] = annotation_format
    train, model = params.get("train", False), params.get("model")
    if not isinstance(train, bool) or train == (model is not None):
        raise InputError("an inspect job needs 'model' (a model folder) or 'train': true, "
                         "one of them")
    if model is not None:
        if not isinstance(model, str):
            raise InputError(f"job parameter 'model' must be a folder, got {model!r}")
        path = resolve_within_roots(model, (*settings.slide_roots, settings.data_dir))
        if not path.is_dir():
            raise InputError(f"job parameter 'model': {path} is not a folder")
        checked["model"] = str(path)
    limit = settings.jobs.max_train_epochs
    epochs = params.get("epochs", min(3, limit))
    if not isinstance(epochs, int) or isinstance(epochs, bool) or not 1 <= epochs <= limit:
        raise InputError(f"job parameter 'epochs' must be an integer in [1, {limit}], "
                         f"got {epochs!r}")
    checked.update(train=train, epochs=epochs)
    for key in ("alpha", "gamma"):
        value = params.get(key, 0.0)
        if not isinstance(value, int | float) or isinstance(value, bool) \
                or not 0.0 <= value <= 1.0:
            raise InputError(f"job parameter {key!r} must be a number in [0, 1], "
                             f"got {value!r}")
        checked[key] = float(value)
    name = params.get("name")
    if name is not None and (not isinstance(name, str) or not 0 < len(name) <= 200):
        raise InputError("job parameter 'name' must be a text of 1 to 200 characters")
    checked["name"] = name
    return checked


def inspect_job(settings: SiteSettings, store: Store, job: Job, progress: Progress
                ) -> Mapping[str, Any]:
    """Run the inspection; the summary names the run and its most suspect item."""
    from pathloop.client.segmentation import get_profile
    from pathloop.client.usecases.quality import (
        InstanceModel,
        inspect_image_set,
        inspect_slide_regions,
        rescore,
    )

    params = job.params
    profile = None
    train_dir = None
    if params["train"]:
        profile = get_profile(settings.federation.profile).with_overrides(
            num_epochs=params["epochs"])
        train_dir = settings.data_dir / "models" / f"instances-{time.time_ns()}"
    model = InstanceModel(model_dir=Path(params["model"]) if params.get("model") else None,
                          profile=profile, train_dir=train_dir,
                          device=settings.federation.device)

    def report(stage: str, done: int, total: int) -> None:
        progress(done, total, stage)

    common: dict[str, Any] = {"model": model, "annotation_format": params["format"],
                              "alpha": params["alpha"], "gamma": params["gamma"],
                              "name": params["name"], "author": job.user,
                              "progress": report, "should_stop": progress.stop_requested}
    if job.slide_id is None:
        annotations = params["annotations"]
        run = inspect_image_set(settings, store, Path(params["images"]), mpp=params["mpp"],
                                annotations=Path(annotations) if annotations else None,
                                **common)
    else:
        run = inspect_slide_regions(settings, store, store.get_slide(job.slide_id),
                                    Path(params["regions"]), **common)
    # Stored: from here the job completes, a cancel no longer stops it.
    items = rescore(store, run.id)
    return {"inspection_id": run.id, "items": len(items),
            "top_item": items[0].item.name if items else None,
            "top_overall": round(items[0].overall, 4) if items else None}


def _folder(settings: SiteSettings, params: Mapping[str, Any], key: str, *,
            required: bool) -> str | None:
    value = params.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise InputError(f"job parameter {key!r} must be a folder inside the slide roots, "
                         f"got {value!r}")
    path = resolve_within_roots(value, settings.slide_roots)
    if not path.is_dir():
        raise InputError(f"job parameter {key!r}: {path} is not a folder")
    return str(path)
