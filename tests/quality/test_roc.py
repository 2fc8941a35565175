"""Our ROC-AUC and ROC curve equal scikit-learn's, ties included."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sklearn_roc_curve

from pathloop.client.errors import InputError
from pathloop.client.quality import roc_auc, roc_curve


@st.composite
def labelled_scores(draw: st.DrawFn, tied: bool) -> tuple[list[bool], list[float]]:
    n = draw(st.integers(2, 60))
    truth = draw(st.lists(st.booleans(), min_size=n, max_size=n)
                 .filter(lambda t: 0 < sum(t) < len(t)))
    element = (st.sampled_from([0.0, 0.25, 0.5, 1.0]) if tied
               else st.floats(0, 1, allow_nan=False))
    scores = draw(st.lists(element, min_size=n, max_size=n))
    return truth, scores


@settings(max_examples=300, deadline=None)
@given(st.one_of(labelled_scores(tied=False), labelled_scores(tied=True)))
def test_auc_and_curve_equal_scikit_learn(case: tuple[list[bool], list[float]]) -> None:
    truth, scores = case
    assert roc_auc(truth, scores) == pytest.approx(roc_auc_score(truth, scores), abs=1e-12)
    fpr, tpr = roc_curve(truth, scores)
    ref_fpr, ref_tpr, _ = sklearn_roc_curve(truth, scores, drop_intermediate=False)
    assert fpr == pytest.approx(ref_fpr) and tpr == pytest.approx(ref_tpr)
    assert np.trapezoid(tpr, fpr) == pytest.approx(roc_auc(truth, scores))


def test_ties_count_one_half() -> None:
    assert roc_auc([True, False], [0.5, 0.5]) == 0.5
    assert roc_auc([True, False, True, False], [0.9, 0.1, 0.4, 0.4]) == 0.875


@pytest.mark.parametrize(("truth", "scores", "words"), [
    ([True, True], [0.1, 0.2], "2 noisy and 0 clean"),
    ([False, False, False], [0.1, 0.2, 0.3], "0 noisy and 3 clean"),
    ([True, False], [0.1], "2 truth values but 1 scores"),
    ([True, False], [0.1, float("nan")], "finite")])
def test_undefined_cases_are_refused_clearly(truth: list[bool], scores: list[float],
                                             words: str) -> None:
    with pytest.raises(InputError, match=words):
        roc_auc(truth, scores)
    with pytest.raises(InputError, match=words):
        roc_curve(truth, scores)
