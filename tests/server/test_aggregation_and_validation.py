"""Member-wise weighted averaging and the checks an update must pass (pure numpy)."""

from __future__ import annotations

import numpy as np
import pytest

from pathloop.server.aggregation import aggregate
from pathloop.server.contract import (
    PACKED,
    SITE_METRICS,
    PackingLayout,
    member_key,
    parse_member_key,
)
from pathloop.server.errors import UpdateRejectedError
from pathloop.server.validation import check_metrics, check_update


def _ensemble(seed: int, folds: int = 3) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    arrays = {}
    for fold in range(folds):
        arrays[member_key(fold, "encoder.0.weight")] = rng.normal(size=(8, 3, 3, 3)).astype(
            np.float32)
        arrays[member_key(fold, "encoder.0.bias")] = rng.normal(size=8).astype(np.float32)
    return arrays


def _unclipped(*updates: dict[str, np.ndarray]) -> list[dict[int, float]]:
    return [{parse_member_key(name)[0]: 1.0 for name in u} for u in updates]


def test_weighted_mean_is_member_wise_and_weighted() -> None:
    a, b = _ensemble(1), _ensemble(2)
    # The mean of the unclipped changes from a: a + 0.25·(b − a).
    mean = aggregate(a, [a, b], [30.0, 10.0], _unclipped(a, b))
    for name in a:
        expected = 0.75 * a[name] + 0.25 * b[name]
        np.testing.assert_allclose(mean[name], expected, rtol=1e-6, atol=1e-7)
        assert mean[name].dtype == np.float32
    # Fold 1 of the result comes from the sites' fold 1 only.
    key = member_key(1, "encoder.0.bias")
    np.testing.assert_allclose(mean[key], 0.75 * a[key] + 0.25 * b[key], rtol=1e-6, atol=1e-7)


def test_weighted_mean_refuses_nothing_and_non_positive_weights() -> None:
    a, b = _ensemble(1), _ensemble(2)
    with pytest.raises(ValueError, match="no update"):
        aggregate(a, [], [], [])
    with pytest.raises(ValueError, match="positive"):
        aggregate(a, [a, b], [30.0, 0.0], _unclipped(a, b))
    with pytest.raises(ValueError, match="positive"):
        aggregate(a, [a, b], [30.0, float("nan")], _unclipped(a, b))


def test_member_keys_round_trip_and_refuse_other_names() -> None:
    assert parse_member_key(member_key(4, "decoder.seg_layers.0.weight")) == (
        4, "decoder.seg_layers.0.weight")
    with pytest.raises(ValueError, match="not a member array name"):
        parse_member_key("encoder.0.weight")


def test_an_honest_update_passes_with_each_members_change() -> None:
    reference = _ensemble(1)
    update = {k: v + np.float32(0.01) * np.sign(v) for k, v in reference.items()}
    change = check_update(update, reference)
    assert set(change) == {0, 1, 2}
    assert all(0 < value < 0.05 for value in change.values())


@pytest.mark.parametrize(("corrupt", "reason"), [
    (lambda u: u.pop(member_key(0, "encoder.0.bias")), r"missing 1 arrays"),
    (lambda u: u.update({"fold9/extra": np.zeros(1, np.float32)}), r"1 unexpected arrays"),
    (lambda u: u.update({member_key(0, "encoder.0.bias"): np.zeros(9, np.float32)}),
     r"has shape \(9,\), expected \(8,\)"),
    (lambda u: u.update({member_key(0, "encoder.0.bias"): np.zeros(8, np.float64)}),
     r"has dtype float64, expected float32"),
    (lambda u: u[member_key(1, "encoder.0.weight")].__setitem__((0, 0, 0, 0), np.nan),
     r"holds NaN or infinite"),
    (lambda u: u.update({member_key(2, "encoder.0.weight"):
                         u[member_key(2, "encoder.0.weight")] * np.float32(1e6)}),
     r"member fold2 changed by .*× its global norm"),
])
def test_bad_updates_are_refused_with_the_reason(corrupt, reason: str) -> None:  # type: ignore[no-untyped-def]
    reference = _ensemble(1)
    update = {k: v.copy() for k, v in reference.items()}
    corrupt(update)
    with pytest.raises(UpdateRejectedError, match=reason):
        check_update(update, reference)


def test_metrics_must_be_known_finite_numbers() -> None:
    assert check_metrics({"num-examples": 12, "dice": 0.8}) == {"num-examples": 12.0,
                                                                 "dice": 0.8}
    assert "num-examples" in SITE_METRICS
    with pytest.raises(UpdateRejectedError, match="unexpected metrics \\['slide-path'\\]"):
        check_metrics({"slide-path": 1.0})
    with pytest.raises(UpdateRejectedError, match="'dice' is not a finite number"):
        check_metrics({"dice": float("nan")})


def test_packing_round_trips_every_member_and_refuses_misfits() -> None:
    arrays = _ensemble(3, folds=5)
    layout = PackingLayout.of(arrays)
    packed = layout.pack(arrays)
    assert sorted(packed) == [member_key(k, PACKED) for k in range(5)]
    assert all(v.dtype == np.float32 and v.shape == (layout.size,) for v in packed.values())
    again = PackingLayout.from_json(layout.to_json())
    assert again == layout
    unpacked = again.unpack(packed)
    assert set(unpacked) == set(arrays)
    for name, array in arrays.items():
        np.testing.assert_array_equal(unpacked[name], array)
    with pytest.raises(ValueError, match="missing"):
        layout.pack({k: v for k, v in arrays.items() if not k.endswith("bias")})
    with pytest.raises(ValueError, match=r"needs \("):
        layout.unpack({**packed, member_key(0, PACKED): packed[member_key(0, PACKED)][:-1]})
    with pytest.raises(ValueError, match="expected"):
        layout.unpack({member_key(0, PACKED): packed[member_key(0, PACKED)]})
    with pytest.raises(ValueError, match="not valid JSON"):
        PackingLayout.from_json('{"folds": [0]}')
    odd = dict(arrays)
    odd[member_key(3, "extra")] = np.zeros(2, np.float32)
    with pytest.raises(ValueError, match="other parameters"):
        PackingLayout.of(odd)
