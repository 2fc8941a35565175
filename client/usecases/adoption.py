"""The site's gate on what it adopts: a new model version becomes current only if it is not
worse on the site's own held-out tiles.

Every new version of the site's ensemble that the site did not pick by hand (a global version
from the federation, or one its train job made) is stored first as *held* (kept, never
current), then :func:`gate_version` scores it and the current model on the same held-out
tiles and records the decision:

adopted
    Its pooled Dice is at least the current model's minus ``[federation] adopt-margin``
    (or there is no current model to compare with).
refused
    Worse by more than the margin. The version and its weights stay in the store (the
    central team may ask about it), the current model is unchanged, and the refusal counts
    in the metrics the site sends (:func:`refused_versions`).

When the site has no held-out tiles, ``[federation] adopt-without-held-out`` decides
(adopt with a warning in the log, or refuse). Versions the operator imports or trains on
the command line are an explicit choice and become current without the gate.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from pathloop.client.errors import RecordNotFoundError
from pathloop.client.segmentation import Case
from pathloop.client.settings import Precision, SiteSettings
from pathloop.client.store import AdoptionRecord, ModelVersionRecord, Store
from pathloop.client.usecases.loop import pooled_dice
from pathloop.client.usecases.models import MODEL_KIND, folder_cases, load_ensemble

logger = logging.getLogger(__name__)

Scorer = Callable[[ModelVersionRecord], tuple[float, int]]
"""A model version's pooled held-out Dice and the number of tiles it was scored on."""


def current_model(store: Store) -> ModelVersionRecord:
    """The site's current ensemble (the newest version not refused nor held).

    Raises
    ------
    RecordNotFoundError
        The site has no model yet.
    """
    version = store.current_model_version(MODEL_KIND)
    if version is None:
        raise RecordNotFoundError("the site has no model yet (import one with "
                                  "`pathloop model import` or join the federation)")
    return version


def refused_versions(store: Store) -> int:
    """How many versions of the site's ensemble the gate refused (the central team's count)."""
    return store.count_adoptions(MODEL_KIND, "refused")


def held_out_score(version: ModelVersionRecord, cases: Sequence[Case], device: str = "cpu",
                   precision: Precision = "auto") -> tuple[float, int]:
    """Foreground Dice of the fold mean's argmax over ``cases`` (``(H, W, 3)`` uint8 tiles,
    ``(H, W)`` uint8 masks), pooled (every tile's pixels counted together, as if they were
    one image), and the number of tiles.

    Pooled rather than averaged per tile: a tile with a sliver of foreground would weigh as
    much as one full of it, and one with none scores 0 or 1 whatever the model does.
    """
    ensemble = load_ensemble(version, device, precision)

    def pairs() -> Iterator[tuple[NDArray[np.integer], NDArray[np.integer]]]:
        for case in cases:
            probs = ensemble.predict_folds(case.image[None])  # (K, 1, C, H, W)
            yield probs.mean(axis=0)[0].argmax(axis=0), case.mask

    return pooled_dice(pairs()), len(cases)


def held_out_scorer(settings: SiteSettings, cases: Sequence[Case]) -> Scorer:
    """Scores versions on ``cases`` with the site's device and precision."""
    def score(version: ModelVersionRecord) -> tuple[float, int]:
        return held_out_score(version, cases, settings.federation.device,
                              settings.inference.precision)

    return score


def gate_version(settings: SiteSettings, store: Store, candidate: ModelVersionRecord,
                 score: Scorer, *, actor: str) -> AdoptionRecord:
    """Score ``candidate`` against the current model and record whether it becomes current.

    The candidate is scored even when nothing is compared (its Dice is reported); the
    current model is scored on the same tiles, so a change of held-out set cannot favour
    either.
    """
    fed = settings.federation
    if store.current_model_version(candidate.kind) == candidate:
        dice, tiles = score(candidate)
        return store.record_adoption(candidate.id, "adopted", actor=actor,
                                     reason="already the current model",
                                     dice=dice if tiles else None, held_out=tiles)
    incumbent = store.current_model_version(candidate.kind, excluding=candidate.id)
    dice, tiles = score(candidate)
    if incumbent is None:
        return store.record_adoption(candidate.id, "adopted", actor=actor,
                                     reason="no current model to compare with",
                                     dice=dice if tiles else None, held_out=tiles)
    if not tiles:
        return _unscored(fed.adopt_without_held_out, store, candidate, incumbent, actor)
    current_dice, _ = score(incumbent)
    scores: dict[str, Any] = {"dice": dice, "current_id": incumbent.id,
                              "current_dice": current_dice, "margin": fed.adopt_margin,
                              "held_out": tiles}
    if dice >= current_dice - fed.adopt_margin:
        return store.record_adoption(
            candidate.id, "adopted", actor=actor, **scores,
            reason=f"held-out Dice {dice:.4f} not worse than the current model's "
                   f"{current_dice:.4f} by more than {fed.adopt_margin} on {tiles} tiles")
    logger.warning("model version %d (%s) refused: held-out Dice %.4f, current model %d "
                   "(%s) %.4f, margin %s, %d tiles", candidate.id, candidate.name, dice,
                   incumbent.id, incumbent.name, current_dice, fed.adopt_margin, tiles)
    return store.record_adoption(
        candidate.id, "refused", actor=actor, **scores,
        reason=f"held-out Dice {dice:.4f} worse than the current model's {current_dice:.4f} "
               f"by more than {fed.adopt_margin} ([federation] adopt-margin) on {tiles} tiles")


def _unscored(adopt: bool, store: Store, candidate: ModelVersionRecord,
              incumbent: ModelVersionRecord, actor: str) -> AdoptionRecord:
    """The decision when there are no held-out tiles: ``[federation] adopt-without-held-out``."""
    if adopt:
        logger.warning("model version %d (%s) adopted without a held-out score: the site has "
                       "no held-out tiles ([federation] held-out-images)", candidate.id,
                       candidate.name)
        return store.record_adoption(
            candidate.id, "adopted", actor=actor, current_id=incumbent.id,
            reason="no held-out tiles; adopted unscored ([federation] "
                   "adopt-without-held-out = true)")
    logger.warning("model version %d (%s) refused: the site has no held-out tiles to score "
                   "it on", candidate.id, candidate.name)
    return store.record_adoption(
        candidate.id, "refused", actor=actor, current_id=incumbent.id,
        reason="no held-out tiles to score it on ([federation] adopt-without-held-out = "
               "false)")


def site_held_out(settings: SiteSettings) -> list[Case]:
    """The held-out tiles named in ``[federation]`` (none when the folders are not set)."""
    fed = settings.federation
    if fed.held_out_images is None or fed.held_out_masks is None:
        return []
    return list(folder_cases(fed.held_out_images, fed.held_out_masks))


def gate_trained_version(settings: SiteSettings, store: Store, candidate: ModelVersionRecord,
                         *, actor: str) -> AdoptionRecord:
    """:func:`gate_version` for a version the site trained, on its ``[federation]``
    held-out tiles."""
    return gate_version(settings, store, candidate,
                        held_out_scorer(settings, site_held_out(settings)), actor=actor)


__all__ = ["Scorer", "current_model", "gate_trained_version", "gate_version",
           "held_out_score", "held_out_scorer", "refused_versions", "site_held_out"]
