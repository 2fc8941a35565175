"""What each background job kind runs: the site's use cases with progress and cancel.

Each function takes the settings, the store, the job (its slide and ``params``) and a
progress callback that raises :class:`~pathloop.client.api.jobs.JobCancelled` once the job is
cancelled, and returns a JSON-compatible summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pathloop.client.api.jobs import Job, JobFunction, Progress
from pathloop.client.errors import InputError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import ModelVersionRecord, Store


def _int(params: Mapping[str, Any], key: str, default: int, low: int, high: int) -> int:
    value = params.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise InputError(f"job parameter {key!r} must be an integer in [{low}, {high}], "
                         f"got {value!r}")
    return value


def _float(params: Mapping[str, Any], key: str, default: float) -> float:
    value = params.get(key, default)
    if not isinstance(value, int | float) or isinstance(value, bool) or not value > 0:
        raise InputError(f"job parameter {key!r} must be a positive number, got {value!r}")
    return float(value)


def current_model(store: Store) -> ModelVersionRecord:
    """The site's current ensemble: its newest version not refused nor held."""
    from pathloop.client.usecases.adoption import current_model as current

    return current(store)


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


def rank_job(settings: SiteSettings, store: Store, job: Job, progress: Progress
             ) -> Mapping[str, Any]:
    """Rank the predicted slide's patches; the top ``k`` become its worklist."""
    from pathloop.client.ranking import PatchSpec
    from pathloop.client.usecases.loop import STRATEGIES, rank_stored_slide

    assert job.slide_id is not None
    params = job.params
    strategy = params.get("strategy", "uga")
    if strategy not in STRATEGIES:
        raise InputError(f"job parameter 'strategy': one of {', '.join(STRATEGIES)}")
    spec = PatchSpec(size=_int(params, "size", settings.tiling.tile_size, 16, 8192),
                     mpp=_float(params, "mpp", settings.tiling.mpp))
    k = _int(params, "k", 20, 1, 10_000)
    progress(0, 1, "ranking patches")
    ranking = rank_stored_slide(settings, store, store.get_slide(job.slide_id), spec=spec,
                                k=k, strategy=str(strategy))
    progress(1, 1, "ranked")
    return {"ranking_id": ranking.ranking.id, "patches": len(ranking.selected)}


def train_job(settings: SiteSettings, store: Store, job: Job, progress: Progress
              ) -> Mapping[str, Any]:
    """Fine-tune the current ensemble on the site's training tiles plus every correction;
    the new version becomes current only if the site's held-out Dice gate adopts it."""
    import time

    from pathloop.client.segmentation import ModelCard, get_profile
    from pathloop.client.usecases.adoption import gate_trained_version
    from pathloop.client.usecases.models import correction_cases, folder_cases, train_model

    parent = current_model(store)
    assert parent.weights_uri is not None
    card = ModelCard.read(parent.weights_uri)
    fed = settings.federation
    corrections = store.latest_corrections(settings.site_id)
    progress(0, 2, f"reading {len(corrections)} corrections")
    cases = list(correction_cases(settings, store, corrections))
    if fed.training_images is not None and fed.training_masks is not None:
        cases += list(folder_cases(fed.training_images, fed.training_masks))
    if not cases:
        raise InputError("nothing to train on: no corrections and no [federation] "
                         "training-images")
    epochs = _int(job.params, "epochs", 3, 1, 1000)
    profile = get_profile(fed.profile).with_overrides(n_folds=card.n_folds, num_epochs=epochs)
    progress(1, 2, f"training {card.n_folds} folds on {len(cases)} tiles")
    version = train_model(settings, store, cases, task=card.task, mpp=card.mpp,
                          profile=profile, name=f"local-{time.time_ns()}", parent=parent,
                          corrections=corrections, device=fed.device,
                          held="trained by the site; waiting for the held-out Dice gate")
    progress(2, 2, "trained; scoring on held-out tiles")
    decision = gate_trained_version(settings, store, version, actor="site-job")
    return {"model_version_id": version.id, "name": version.name, "cases": len(cases),
            "adopted": decision.outcome == "adopted", "adoption": decision.reason}


JOB_FUNCTIONS: dict[str, JobFunction] = {
    "tile": tile_job, "predict": predict_job, "rank": rank_job, "train": train_job}
