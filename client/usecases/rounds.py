"""The site's side of a federated round (plain use cases; Flower lives in client/federation/).

A round at a site, as the aggregation server drives it:

train
    The global ensemble arrives as arrays; it is stored as a local model version, held (not
    current) until it is evaluated (:func:`adopt_global`: only if its plans are the site's
    own, checked by digest); the site fine-tunes every fold from it on its training tiles
    plus every correction its pathologists made, and returns the new weights with counts.
    The fine-tuned version is the site's contribution, kept but never current. Patches, paths
    and names never leave: :func:`train_round` returns ``fold<k>/<parameter>`` arrays and
    numbers.
evaluate
    The aggregated ensemble arrives and is scored by Dice on the site's held-out tiles; it
    becomes the site's current model only if the gate
    (:func:`~pathloop.client.usecases.adoption.gate_version`) adopts it, and only then (when
    ``rerank-k`` is set) predicts the site's slides and refreshes their worklists: the loop
    closes at the site.
query
    Counts only (:func:`site_status`).

Every round's settings are checked against the site's own limits (``[federation]``
``max-local-epochs``, ``max-learning-rate``, ``max-proximal-mu``) before anything is done.
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pathloop.client.errors import InputError, ProtocolError, RoundLimitError
from pathloop.client.ranking import PatchSpec
from pathloop.client.segmentation import Case, ModelCard, SegmentationTask, get_profile
from pathloop.client.settings import FederationSettings, Precision, SiteSettings
from pathloop.client.store import ModelVersionRecord, Store
from pathloop.client.usecases.adoption import (
    gate_version,
    held_out_score,
    held_out_scorer,
    refused_versions,
)
from pathloop.client.usecases.loop import predict_stored_slide, rank_stored_slide
from pathloop.client.usecases.models import (
    MODEL_KIND,
    correction_cases,
    folder_cases,
    load_ensemble,
    model_dir,
    train_model,
)
from pathloop.server.contract import PROTOCOL_VERSION, ConfigKey, MetricKey, plans_digest

logger = logging.getLogger(__name__)

Arrays = Mapping[str, NDArray[Any]]
#: Hue shifts during local fine-tuning, as in the UGA paper's retraining.
ROUND_HUE_SHIFT = 0.05


@dataclass(frozen=True)
class RoundConfig:
    """What the server asks of this round (parsed from its ConfigRecord)."""

    server_round: int
    global_version: int
    plans_sha256: str
    local_epochs: int
    learning_rate: float
    proximal_mu: float

    @classmethod
    def parse(cls, config: Mapping[str, Any], limits: FederationSettings) -> RoundConfig:
        """Check the protocol version and the plans' digest; read the round's settings and
        check each against the site's ``limits`` (a key the server leaves out takes the
        site's default: 1 epoch, learning rate 0.001, μ 0).

        Raises
        ------
        RoundLimitError
            A setting that is not a finite number of the right kind, or outside ``limits``
            (the error names the key, its value and what the site allows).
        ProtocolError
            Another protocol version, plans that do not match their digest, or a key missing.
        """
        version = config.get(ConfigKey.PROTOCOL)
        if version != PROTOCOL_VERSION:
            raise ProtocolError(f"server speaks protocol {version!r}, this site "
                                f"{PROTOCOL_VERSION}: upgrade one of them")
        if ConfigKey.GLOBAL_VERSION not in config:
            raise ProtocolError(f"malformed round config: no {ConfigKey.GLOBAL_VERSION!r}")
        try:
            plans = json.loads(str(config[ConfigKey.PLANS]))
            digest = str(config[ConfigKey.PLANS_SHA256])
        except (KeyError, ValueError, TypeError) as error:
            raise ProtocolError(f"malformed round config ({error!r})") from None
        parsed = cls(
            _whole(config, ConfigKey.ROUND, 0, None, 0),
            _whole(config, ConfigKey.GLOBAL_VERSION, 0, None, 0),
            digest,
            _whole(config, ConfigKey.LOCAL_EPOCHS, 1, "max-local-epochs", 1,
                   limits.max_local_epochs),
            _real(config, ConfigKey.LEARNING_RATE, 1e-3, "max-learning-rate",
                  limits.max_learning_rate, above_zero=True),
            _real(config, ConfigKey.PROXIMAL_MU, 0.0, "max-proximal-mu",
                  limits.max_proximal_mu, above_zero=False))
        if plans_digest(plans) != digest:
            raise ProtocolError("the global plans do not match their SHA-256")
        return parsed


def _whole(config: Mapping[str, Any], key: str, default: int, setting: str | None,
           low: int, high: int | None = None) -> int:
    """A whole-number round setting in ``[low, high]`` (``high`` from ``[federation]
    setting``); absent: ``default``."""
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value < low \
            or (high is not None and value > high):
        allowed = (f"a whole number from {low} to {high} ([federation] {setting})"
                   if high is not None else f"a whole number from {low}")
        raise RoundLimitError(key, value, allowed)
    return value


def _real(config: Mapping[str, Any], key: str, default: float, setting: str, high: float, *,
          above_zero: bool) -> float:
    """A finite round setting in ``(0, high]`` or ``[0, high]``; absent: ``default``."""
    value = config.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) \
            or not math.isfinite(value) or value > high \
            or (value <= 0 if above_zero else value < 0):
        low = "(0" if above_zero else "[0"
        raise RoundLimitError(key, value, f"a finite number in {low}, {high}] "
                                          f"([federation] {setting})")
    return float(value)


@dataclass(frozen=True)
class LocalData:
    """A site's own tiles: what it trains on (beside corrections) and what it scores on.

    ``training`` and ``held_out`` hold ``(H, W, 3)`` uint8 tiles with ``(H, W)`` uint8 masks
    at ``mpp`` µm/px.
    """

    task: SegmentationTask
    mpp: float
    training: Sequence[Case]
    held_out: Sequence[Case]

    @classmethod
    def from_settings(cls, settings: SiteSettings) -> LocalData:
        """Read the folders named in ``[federation]`` of the site config."""
        fed = settings.federation
        task = SegmentationTask("federated", {n: i for i, n in enumerate(fed.labels)})
        folders = (fed.training_images, fed.training_masks, fed.held_out_images,
                   fed.held_out_masks)
        if any(folder is None for folder in folders):
            raise InputError("site config: [federation] needs training-images, "
                             "training-masks, held-out-images and held-out-masks")
        train_images, train_masks, held_images, held_masks = folders
        assert train_images and train_masks and held_images and held_masks
        return cls(task, fed.mpp, list(folder_cases(train_images, train_masks)),
                   list(folder_cases(held_images, held_masks)))


def adopt_global(settings: SiteSettings, store: Store, arrays: Arrays,
                 config: RoundConfig) -> ModelVersionRecord:
    """The global ensemble as a local model version (reused if this version is known).

    A new version is stored held: kept, never current until the gate adopts it (see
    :func:`evaluate_round`). It is built on the site's current model (its plans and files).

    Raises
    ------
    InputError
        The site has no model to build on (import the federation's initial model first).
    ProtocolError
        The global plans are not the site's (it refuses to train under another plan).
    """
    from pathloop.client.segmentation import ensemble_plans, write_ensemble

    name = global_version_name(config.global_version, arrays)
    known = store.latest_model_version(MODEL_KIND, name)
    if known is not None:
        return known
    current = store.current_model_version(MODEL_KIND)
    if current is None or not current.weights_uri:
        raise InputError("this site has no model yet: import the federation's initial "
                         "model first (pathloop model import)")
    local = plans_digest(ensemble_plans(current.weights_uri))
    if local != config.plans_sha256:
        raise ProtocolError(f"the federation's plans ({config.plans_sha256[:12]}) differ "
                            f"from this site's model plans ({local[:12]}); refusing to train")
    target = write_ensemble(arrays, current.weights_uri, model_dir(settings, name),
                            extra={"global_version": config.global_version})
    return store.add_model_version(
        name=name, kind=MODEL_KIND, parent_id=current.id, weights_uri=str(target),
        provenance={**current.provenance, "global_version": config.global_version,
                    "received": "federation", "server_round": config.server_round},
        actor="federation", held="received from the federation; waiting for the held-out "
                                "Dice gate")


def global_version_name(version: int, arrays: Arrays) -> str:
    """The local name of a global version: its number and its weights' digest.

    The digest makes a version known only for the very same weights (a reset federation
    reuses version numbers).
    """
    return f"global-v{version:04d}-{_digest(arrays)[:10]}"


def _digest(arrays: Arrays) -> str:
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype}:{array.shape};".encode())
        digest.update(array.data)  # contiguous: hashed in place, no copy
    return digest.hexdigest()


def train_round(settings: SiteSettings, store: Store, data: LocalData, arrays: Arrays,
                config: RoundConfig) -> tuple[dict[str, NDArray[np.float32]], dict[str, float]]:
    """Fine-tune the global ensemble on local tiles plus corrections; weights and counts."""
    from pathloop.client.segmentation import ensemble_arrays

    started = time.perf_counter()
    global_version = adopt_global(settings, store, arrays, config)
    assert global_version.weights_uri is not None
    card = ModelCard.read(global_version.weights_uri)
    task = card.task  # the federation's task and folds, not the site's guess
    if task.label_names != data.task.label_names:
        raise InputError(f"site config: [federation] labels {list(data.task.label_names)} "
                         f"differ from the federation model's {list(task.label_names)}")
    corrections = store.latest_corrections(settings.site_id)
    cases = [*data.training, *correction_cases(settings, store, corrections)]
    profile = get_profile(settings.federation.profile).with_overrides(
        n_folds=card.n_folds, num_epochs=config.local_epochs, initial_lr=config.learning_rate,
        proximal_mu=config.proximal_mu, hue_shift=ROUND_HUE_SHIFT,
        seed=round_seed(settings.federation.seed, config.server_round))
    name = f"local-v{config.global_version:04d}-r{config.server_round}-{time.time_ns()}"
    local = train_model(settings, store, cases, task=task, mpp=data.mpp,
                        profile=profile, name=name, parent=global_version,
                        corrections=corrections, device=settings.federation.device,
                        held=f"this site's contribution to round {config.server_round}; "
                             f"the aggregate comes back to be evaluated")
    assert local.weights_uri is not None
    metrics = {MetricKey.PROTOCOL: float(PROTOCOL_VERSION),
               MetricKey.EXAMPLES: float(len(cases)),
               MetricKey.CORRECTIONS: float(len(corrections)),
               MetricKey.TRAIN_SECONDS: round(time.perf_counter() - started, 1)}
    return ensemble_arrays(local.weights_uri), metrics


def round_seed(site_seed: int | None, server_round: int) -> int | None:
    """The training profile's seed for one round of a seeded site (``None``: unseeded).

    Rounds draw apart (round 2 does not replay round 1's sampling), within the profile's
    seed range.
    """
    if site_seed is None:
        return None
    return (site_seed * 7919 + server_round) % 2**20


def evaluate_round(settings: SiteSettings, store: Store, data: LocalData, arrays: Arrays,
                   config: RoundConfig) -> dict[str, float]:
    """Score the aggregated ensemble on held-out tiles; adopt it as current only if the gate
    does, and only then re-rank.

    The metrics carry its Dice (when there were held-out tiles), whether it was adopted and
    how many versions this site has refused so far. Worklists are refreshed from global
    versions the rounds made (1, 2, …), not from version 0, the initial model every site
    imported before joining: the site's worklists already come from it or from the site's
    own later models, and predicting every slide again would only cost time.
    """
    version = adopt_global(settings, store, arrays, config)
    decision = gate_version(settings, store, version,
                            held_out_scorer(settings, data.held_out), actor="federation")
    adopted = decision.outcome == "adopted"
    if adopted and settings.federation.rerank_k and config.global_version > 0:
        refresh_worklists(settings, store, version, k=settings.federation.rerank_k)
    metrics = {MetricKey.PROTOCOL: float(PROTOCOL_VERSION),
               MetricKey.HELD_OUT: float(decision.held_out),
               MetricKey.ADOPTED: float(adopted),
               MetricKey.REFUSED: float(refused_versions(store))}
    if decision.dice is not None:
        metrics[MetricKey.DICE] = decision.dice
    return metrics


def held_out_dice(version: ModelVersionRecord, data: LocalData, device: str = "cpu",
                  precision: Precision = "auto") -> tuple[float, int]:
    """Pooled foreground Dice over the site's held-out tiles and their number (see
    :func:`~pathloop.client.usecases.adoption.held_out_score`)."""
    return held_out_score(version, data.held_out, device, precision)


def refresh_worklists(settings: SiteSettings, store: Store, version: ModelVersionRecord, *,
                      k: int, spec: PatchSpec | None = None) -> int:
    """Predict every slide of the site with ``version`` and rank its patches; slides done.

    The worklist's patches are the site's tiles (``[tiling]`` tile-size at its µm/px)
    unless ``spec`` says otherwise.
    """
    ensemble = load_ensemble(version, settings.federation.device, settings.inference.precision)
    spec = spec or PatchSpec(size=settings.tiling.tile_size, mpp=settings.tiling.mpp)
    slides = store.list_slides(settings.site_id)
    for slide in slides:
        predict_stored_slide(settings, store, slide, ensemble, version)
        rank_stored_slide(settings, store, slide, spec=spec, k=k)
    return len(slides)


def site_status(settings: SiteSettings, store: Store) -> dict[str, float]:
    """Counts for the central team: slides, corrections, pending worklist patches, model
    versions the site refused to adopt."""
    slides = store.list_slides(settings.site_id)
    pending = 0
    for slide in slides:
        ranking = store.latest_ranking(slide.id)
        if ranking is not None:
            pending += sum(p.status == "pending" for p in store.ranked_patches(ranking.id))
    return {MetricKey.PROTOCOL: float(PROTOCOL_VERSION), MetricKey.SLIDES: float(len(slides)),
            MetricKey.CORRECTIONS: float(len(store.latest_corrections(settings.site_id))),
            MetricKey.PENDING: float(pending), MetricKey.REFUSED: float(refused_versions(store))}


__all__ = ["LocalData", "RoundConfig", "adopt_global", "evaluate_round", "global_version_name",
           "held_out_dice", "refresh_worklists", "round_seed", "site_status", "train_round"]
