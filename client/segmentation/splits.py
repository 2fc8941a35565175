"""Cross-validation splits: which cases each fold trains on and validates on.

nnU-Net splits cases at random into 5 folds. Tiles are not independent cases: tiles of one
slide (or one MoNuSeg image) should land in the same fold, or a fold validates on
neighbours of its training tiles. And when retraining on a pathologist's corrections, every
fold should learn from every corrected patch. :func:`make_splits` does both; the result is
written as nnU-Net's ``splits_final.json``.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from typing import TypedDict

import numpy as np

from pathloop.client.segmentation.errors import DatasetError

#: A single fold validates on one of this many parts of the groups (an 80/20 split).
SINGLE_FOLD_PARTS = 5


class Split(TypedDict):
    """One fold: the case names it trains on and the ones it validates on."""

    train: list[str]
    val: list[str]


def make_splits(
    case_names: Sequence[str],
    n_folds: int = 5,
    *,
    groups: Mapping[str, str] | None = None,
    always_train: Collection[str] = (),
    seed: int = 12345,
) -> list[Split]:
    """Split cases into ``n_folds`` folds, keeping groups together.

    Parameters
    ----------
    case_names:
        Every case of the dataset.
    n_folds:
        Number of folds. With one fold the groups are dealt into
        :data:`SINGLE_FOLD_PARTS` parts (fewer when there are fewer groups, at least 2)
        and the fold validates on the first: an 80/20 split.
    groups:
        Case name → group key (e.g. the slide a tile comes from); cases of a group are
        validated by the same fold. Cases not in the mapping form their own group.
    always_train:
        Cases every fold trains on and none validates on (e.g. corrected patches).
    seed:
        Seed of the shuffle of groups (the same inputs always give the same splits).

    Returns
    -------
    list of Split
        ``n_folds`` entries; fold ``k`` validates on its share of the groups and trains on
        everything else.

    Raises
    ------
    DatasetError
        Fewer groups than folds (some fold would validate on nothing), fewer than 2 groups
        for one fold (it would train or validate on nothing), or names in
        ``always_train`` or ``groups`` that are not cases.
    """
    names = list(dict.fromkeys(case_names))
    unknown = (set(always_train) | set(groups or {})) - set(names)
    if unknown:
        raise DatasetError(f"split: unknown case names {sorted(unknown)[:5]}")
    fixed = set(always_train)
    by_group: dict[str, list[str]] = {}
    for name in names:
        if name not in fixed:
            key = (groups or {}).get(name, f"\0{name}")
            by_group.setdefault(key, []).append(name)
    if n_folds < 1:
        raise DatasetError(f"split: n_folds must be >= 1, got {n_folds}")
    if len(by_group) < max(n_folds, 2):
        raise DatasetError(
            f"split: {len(by_group)} groups of validation cases for {n_folds} folds; "
            f"need at least one group per fold (two for a single fold)"
        )
    parts = n_folds if n_folds > 1 else min(SINGLE_FOLD_PARTS, len(by_group))
    keys = sorted(by_group)
    order = np.random.default_rng(seed).permutation(len(keys))
    # Largest groups first, each to the fold with the fewest cases so far (balanced sizes).
    ranked = sorted((keys[i] for i in order), key=lambda k: -len(by_group[k]))
    val: list[list[str]] = [[] for _ in range(parts)]
    for key in ranked:
        smallest = min(range(parts), key=lambda f: (len(val[f]), f))
        val[smallest].extend(by_group[key])
    splits: list[Split] = []
    for fold in range(n_folds):
        held_out = set(val[fold])
        splits.append({"train": [n for n in names if n not in held_out],
                       "val": sorted(val[fold])})
    return splits


__all__ = ["SINGLE_FOLD_PARTS", "Split", "make_splits"]
