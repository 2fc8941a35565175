"""The loop's use cases: Dice, the measure the loop reports."""

from __future__ import annotations

import numpy as np
import pytest

from pathloop.client.usecases.loop import dice, pooled_dice


def test_dice() -> None:
    a = np.array([[1, 1, 0, 0]])
    assert dice(a, a) == 1.0
    assert dice(a, 1 - a) == 0.0
    assert dice(a, np.array([[1, 0, 0, 0]])) == pytest.approx(2 / 3)
    assert dice(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0


def test_pooled_dice_counts_every_pair_s_pixels_together() -> None:
    full = np.ones((4, 4), np.uint8)
    sliver = np.zeros((4, 4), np.uint8)
    sliver[0, 0] = 1
    missed = np.zeros((4, 4), np.uint8)
    # Per tile: 1.0 on the full tile, 0.0 on the missed sliver, a mean of 0.5; pooled, the
    # one missed pixel of 17 barely counts.
    assert pooled_dice([(full, full), (missed, sliver)]) == pytest.approx(32 / 33)
    assert pooled_dice([(missed, missed)]) == 1.0 and pooled_dice([]) == 1.0
