"""The loop's use cases: Dice, the measure the loop reports."""

from __future__ import annotations

import numpy as np
import pytest

from pathloop.client.usecases.loop import dice


def test_dice() -> None:
    a = np.array([[1, 1, 0, 0]])
    assert dice(a, a) == 1.0
    assert dice(a, 1 - a) == 0.0
    assert dice(a, np.array([[1, 0, 0, 0]])) == pytest.approx(2 / 3)
    assert dice(np.zeros((2, 2)), np.zeros((2, 2))) == 1.0
