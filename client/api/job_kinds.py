"""What each background job kind checks before it is queued and runs when its turn comes.

Each kind's ``check`` takes the settings, the store, the job's slide record (or ``None``)
and its ``params`` and returns the parameters with their defaults filled in, or raises an
:class:`~pathloop.client.errors.InputError` naming the parameter (an unknown key, a wrong
type, a value out of range or beyond a ``[jobs]`` limit): the API answers 422 and nothing is
queued. Each ``run`` takes the settings, the store, the job and its
:class:`~pathloop.client.api.jobs.Progress`, which raises
:class:`~pathloop.client.api.jobs.JobCancelled` once the job is cancelled, and returns a
JSON-compatible summary. A run reports no progress after its use case has stored its result,
so a job is cancelled only while nothing is stored.
"""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping
from typing import Any

from pathloop.client.api.inspect_job import check_inspect, inspect_job
from pathloop.client.api.jobs import Job, JobCheck, JobDefinition, Progress
from pathloop.client.errors import InputError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import ModelVersionRecord, SlideRecord, Store
from pathloop.client.tiling import TileGrid

DEFAULT_RANK_K = 20
DEFAULT_TRAIN_EPOCHS = 3
MAX_PATCH_SIZE = 8192


def _known(kind: str, params: Mapping[str, Any], allowed: Collection[str]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        takes = f"it takes {', '.join(repr(k) for k in allowed)}" if allowed \
            else "it takes none"
        raise InputError(f"job parameter {unknown[0]!r} is not one of a {kind} job's "
                         f"({takes})")


def _int(params: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = params.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InputError(f"job parameter {key!r} must be an integer in [{low}, {high}], "
                         f"got {value!r}")
    return value


def _float(params: Mapping[str, Any], key: str, default: float) -> float:
    value = params.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) \
            or not math.isfinite(value) or not value > 0:
        raise InputError(f"job parameter {key!r} must be a positive number, got {value!r}")
    return float(value)


def current_model(store: Store) -> ModelVersionRecord:
    """The site's current ensemble: its newest version not refused nor held."""
    from pathloop.client.usecases.adoption import current_model as current

    return current(store)


def check_no_params(kind: str) -> JobCheck:
    """The check of a kind that takes no parameters."""
    def check(settings: SiteSettings, store: Store, slide: SlideRecord | None,
              params: Mapping[str, Any]) -> dict[str, Any]:
        _known(kind, params, ())
        return {}
    return check


def tile_job(settings: SiteSettings, store: Store, job: Job, progress: Progress
             ) -> Mapping[str, Any]:
    """Detect tissue and cut the slide into tiles."""
    from pathloop.client.usecases.slides import tile_slide

    assert job.slide_id is not None
    result = tile_slide(settings, store, store.get_slide(job.slide_id),
                        progress=lambda done, total: progress(done, total, "reading tiles"))
    return {"tiles": result.kept, "tissue_fraction": round(result.tissue_fraction, 4)}


def predict_job(settings: SiteSettings, store: Store, job: Job, progress: Progress
                ) -> Mapping[str, Any]:
    """Run the current ensemble over the slide: prediction and uncertainty maps."""
    from pathloop.client.usecases.loop import predict_stored_slide
    from pathloop.client.usecases.models import load_ensemble

    assert job.slide_id is not None
    version = current_model(store)
    progress(0, 1, f"loading model {version.name}")
    ensemble = load_ensemble(version, settings.federation.device, settings.inference.precision)
    prediction = predict_stored_slide(
        settings, store, store.get_slide(job.slide_id), ensemble, version,
        progress=lambda done, total: progress(done, total, "predicting tiles"))
    return {"model_version_id": version.id, "windows": prediction.n_windows,
            "seconds": round(prediction.seconds, 1)}


def check_rank(settings: SiteSettings, store: Store, slide: SlideRecord | None,
               params: Mapping[str, Any]) -> dict[str, Any]:
    """``strategy``, ``size`` (px), ``mpp`` (µm/px, not finer than the slide's) and ``k``;
    the patch grid they imply at most ``[jobs] max-rank-patches``."""
    from pathloop.client.usecases.loop import STRATEGIES

    assert slide is not None
    _known("rank", params, ("strategy", "size", "mpp", "k"))
    strategy = params.get("strategy", "uga")
    if not isinstance(strategy, str) or strategy not in STRATEGIES:
        raise InputError(f"job parameter 'strategy' must be one of {', '.join(STRATEGIES)}, "
                         f"got {strategy!r}")
    size = _int(params, "size", settings.tiling.tile_size, 16, MAX_PATCH_SIZE)
    mpp = _float(params, "mpp", settings.tiling.mpp)
    base_mpp = (slide.mpp_x + slide.mpp_y) / 2
    if mpp < base_mpp * (1 - 1e-6):
        raise InputError(f"job parameter 'mpp' ({mpp} µm/px) is finer than slide {slide.id}'s "
                         f"own resolution ({base_mpp:.4g} µm/px): give at least that")
    patches = len(TileGrid(slide.width, slide.height, base_mpp, mpp, size, size, flush=True))
    limit = settings.jobs.max_rank_patches
    if patches > limit:
        raise InputError(f"job parameters 'size' and 'mpp': {size} px patches at {mpp} µm/px "
                         f"cut slide {slide.id} into {patches} patches, more than [jobs] "
                         f"max-rank-patches = {limit}: use larger patches or a coarser mpp")
    k = _int(params, "k", min(DEFAULT_RANK_K, settings.jobs.max_rank_k), 1,
             settings.jobs.max_rank_k)
    return {"strategy": strategy, "size": size, "mpp": mpp, "k": k}


def rank_job(settings: SiteSettings, store: Store, job: Job, progress: Progress
             ) -> Mapping[str, Any]:
    """Rank the predicted slide's patches; the top ``k`` become its worklist."""
    from pathloop.client.ranking import PatchSpec
    from pathloop.client.usecases.loop import rank_stored_slide

    assert job.slide_id is not None
    params = job.params
    progress(0, 1, "ranking patches")
    ranking = rank_stored_slide(
        settings, store, store.get_slide(job.slide_id),
        spec=PatchSpec(size=params["size"], mpp=params["mpp"]), k=params["k"],
        strategy=params["strategy"],
        progress=lambda done, total: progress(done, total, "ranking patches"))
    return {"ranking_id": ranking.ranking.id, "patches": len(ranking.selected)}


def check_train(settings: SiteSettings, store: Store, slide: SlideRecord | None,
                params: Mapping[str, Any]) -> dict[str, Any]:
    """``epochs`` per fold, at most ``[jobs] max-train-epochs``."""
    _known("train", params, ("epochs",))
    limit = settings.jobs.max_train_epochs
    return {"epochs": _int(params, "epochs", min(DEFAULT_TRAIN_EPOCHS, limit), 1, limit)}


def train_job(settings: SiteSettings, store: Store, job: Job, progress: Progress
              ) -> Mapping[str, Any]:
    """Fine-tune the current ensemble on the site's training tiles plus every correction;
    the new version becomes current only if the site's held-out Dice gate adopts it."""
    import time

    from pathloop.client.segmentation import ModelCard, TrainingEvent, get_profile
    from pathloop.client.usecases.adoption import gate_trained_version
    from pathloop.client.usecases.models import correction_cases, folder_cases, train_model

    parent = current_model(store)
    assert parent.weights_uri is not None
    card = ModelCard.read(parent.weights_uri)
    fed = settings.federation
    corrections = store.latest_corrections(settings.site_id)
    cases = []
    for done, case in enumerate(correction_cases(settings, store, corrections)):
        progress(done, len(corrections), "reading corrections")
        cases.append(case)
    if fed.training_images is not None and fed.training_masks is not None:
        cases += list(folder_cases(fed.training_images, fed.training_masks))
    if not cases:
        raise InputError("nothing to train on: no corrections and no [federation] "
                         "training-images")
    profile = get_profile(fed.profile).with_overrides(n_folds=card.n_folds,
                                                      num_epochs=job.params["epochs"])
    steps = card.n_folds + 1  # the preparation, then each fold
    progress(0, steps, f"preparing {len(cases)} tiles")

    def trained(event: TrainingEvent) -> None:
        if event.stage == "prepare":
            progress(1, steps, f"training fold 1 of {card.n_folds}")
        elif event.stage == "fold" and event.fold is not None \
                and event.fold + 1 < card.n_folds:
            progress(event.fold + 2, steps, f"training fold {event.fold + 2} of {card.n_folds}")

    version = train_model(settings, store, cases, task=card.task, mpp=card.mpp,
                          profile=profile, name=f"local-{time.time_ns()}", parent=parent,
                          corrections=corrections, device=fed.device, progress=trained,
                          should_stop=progress.stop_requested,
                          held="trained by the site; waiting for the held-out Dice gate")
    # Stored (held): from here the job completes, a cancel no longer stops it.
    decision = gate_trained_version(settings, store, version, actor="site-job")
    return {"model_version_id": version.id, "name": version.name, "cases": len(cases),
            "adopted": decision.outcome == "adopted", "adoption": decision.reason}


JOB_KINDS: dict[str, JobDefinition] = {
    "tile": JobDefinition(check_no_params("tile"), tile_job, needs_slide=True),
    "predict": JobDefinition(check_no_params("predict"), predict_job, needs_slide=True),
    "rank": JobDefinition(check_rank, rank_job, needs_slide=True),
    "train": JobDefinition(check_train, train_job, needs_slide=False),
    "inspect": JobDefinition(check_inspect, inspect_job, needs_slide=False),
}
"""Every job kind the site API runs, by name."""
