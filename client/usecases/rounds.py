"""The site's side of a federated round (plain use cases; Flower lives in client/federation/).

A round at a site, as the aggregation server drives it:

train
    The global ensemble arrives as arrays; it becomes a local model version
    (:func:`adopt_global`: only if its plans are the site's own, checked by digest); the site
    fine-tunes every fold from it on its training tiles plus every correction its
    pathologists made, and returns the new weights with counts. Patches, paths and names
    never leave: :func:`train_round` returns ``fold<k>/<parameter>`` arrays and numbers.
evaluate
    The aggregated ensemble arrives; it becomes the site's current model, is scored by Dice
    on the site's held-out tiles, and (when ``rerank-k`` is set) predicts the site's slides
    and refreshes their worklists: the loop closes at the site.
query
    Counts only (:func:`site_status`).
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pathloop.client.errors import InputError, ProtocolError
from pathloop.client.ranking import PatchSpec
from pathloop.client.segmentation import Case, ModelCard, SegmentationTask, get_profile
from pathloop.client.settings import Precision, SiteSettings
from pathloop.client.store import ModelVersionRecord, Store
from pathloop.client.usecases.loop import pooled_dice, predict_stored_slide, rank_stored_slide
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
    def parse(cls, config: Mapping[str, Any]) -> RoundConfig:
        """Check the protocol version and the plans' digest; read the round's settings.

        Raises
        ------
        ProtocolError
            Another protocol version, plans that do not match their digest, or a key missing.
        """
        version = config.get(ConfigKey.PROTOCOL)
        if version != PROTOCOL_VERSION:
            raise ProtocolError(f"server speaks protocol {version!r}, this site "
                                f"{PROTOCOL_VERSION}: upgrade one of them")
        try:
            plans = json.loads(str(config[ConfigKey.PLANS]))
            digest = str(config[ConfigKey.PLANS_SHA256])
            parsed = cls(int(config.get(ConfigKey.ROUND, 0)),
                         int(config[ConfigKey.GLOBAL_VERSION]), digest,
                         int(config.get(ConfigKey.LOCAL_EPOCHS, 1)),
                         float(config.get(ConfigKey.LEARNING_RATE, 1e-3)),
                         float(config.get(ConfigKey.PROXIMAL_MU, 0.0)))
        except (KeyError, ValueError, TypeError) as error:
            raise ProtocolError(f"malformed round config ({error!r})") from None
        if plans_digest(plans) != digest:
            raise ProtocolError("the global plans do not match their SHA-256")
        return parsed


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
    current = store.latest_model_version(MODEL_KIND)
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
        actor="federation")


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
                        corrections=corrections, device=settings.federation.device)
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
    """Adopt the aggregated ensemble as current, score it on held-out tiles, re-rank.

    Worklists are refreshed from global versions the rounds made (1, 2, …), not from
    version 0, the initial model every site imported before joining: the site's worklists
    already come from it or from the site's own later models, and predicting every slide
    again would only cost time.
    """
    version = adopt_global(settings, store, arrays, config)
    score, tiles = held_out_dice(version, data, settings.federation.device,
                                 settings.inference.precision)
    if settings.federation.rerank_k and config.global_version > 0:
        refresh_worklists(settings, store, version, k=settings.federation.rerank_k)
    return {MetricKey.PROTOCOL: float(PROTOCOL_VERSION), MetricKey.DICE: score,
            MetricKey.HELD_OUT: float(tiles)}


def held_out_dice(version: ModelVersionRecord, data: LocalData, device: str = "cpu",
                  precision: Precision = "auto") -> tuple[float, int]:
    """Foreground Dice of the fold mean's argmax over the held-out tiles, pooled (every
    tile's pixels counted together, as if they were one image), and the number of tiles.

    Pooled rather than averaged per tile: a tile with a sliver of foreground would weigh as
    much as one full of it, and one with none scores 0 or 1 whatever the model does.
    """
    ensemble = load_ensemble(version, device, precision)

    def pairs() -> Iterator[tuple[NDArray[np.integer], NDArray[np.integer]]]:
        for case in data.held_out:
            probs = ensemble.predict_folds(case.image[None])  # (K, 1, C, H, W)
            yield probs.mean(axis=0)[0].argmax(axis=0), case.mask

    return pooled_dice(pairs()), len(data.held_out)


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
    """Counts for the central team: slides, corrections, pending worklist patches."""
    slides = store.list_slides(settings.site_id)
    pending = 0
    for slide in slides:
        ranking = store.latest_ranking(slide.id)
        if ranking is not None:
            pending += sum(p.status == "pending" for p in store.ranked_patches(ranking.id))
    return {MetricKey.PROTOCOL: float(PROTOCOL_VERSION), MetricKey.SLIDES: float(len(slides)),
            MetricKey.CORRECTIONS: float(len(store.latest_corrections(settings.site_id))),
            MetricKey.PENDING: float(pending)}


__all__ = ["LocalData", "RoundConfig", "adopt_global", "evaluate_round", "global_version_name",
           "held_out_dice", "refresh_worklists", "round_seed", "site_status", "train_round"]
