"""One site cannot take the global model over: capped counts, clipped changes, robust rules,
and an aggregate that is non-finite or implausible never becomes a global version.

The sites are :func:`support.server_sites.fake_site` functions driven by the real server
(:func:`~pathloop.server.federation.run_federation` over a :class:`support.flower.FakeGrid`);
the bounds checked are the ones :mod:`pathloop.server.aggregation` states.
"""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest
from support.flower import FakeGrid
from support.server_sites import fake_site, initial_model, server_settings

from pathloop.server import strategy as strategy_module
from pathloop.server.aggregation import capped_weights
from pathloop.server.checkpoints import CheckpointStore, GlobalVersion
from pathloop.server.contract import PACKED, member_key
from pathloop.server.errors import CheckpointError, FederationError
from pathloop.server.federation import run_federation
from pathloop.server.settings import ServerSettings
from pathloop.server.validation import check_update

HONEST_SHIFTS = (0.010, 0.012, 0.014, 0.016)  # four honest sites, 10 patches each
LIAR = 5


def _norm(array: np.ndarray) -> float:
    return float(np.linalg.norm(array.astype(np.float64)))


def _run(tmp_path: Path, liar_shift: float, liar_examples: float, corrupt=None,  # type: ignore[no-untyped-def]
         **settings: object) -> CheckpointStore:
    """Rounds (one unless told) of four honest sites and one liar; the store after them."""
    if not (tmp_path / "initial").exists():
        initial_model(tmp_path / "initial")
    sites = {n + 1: fake_site(shift, 10) for n, shift in enumerate(HONEST_SHIFTS)}
    sites[LIAR] = fake_site(liar_shift, liar_examples, corrupt=corrupt)  # type: ignore[arg-type]
    run_federation(FakeGrid(sites),  # type: ignore[arg-type, dict-item]
                   server_settings(tmp_path, **({"num_server_rounds": 1} | settings),
                                   min_train_nodes=5, min_available_nodes=5))
    return CheckpointStore(tmp_path / "checkpoints")


def _packed(arrays: dict[str, np.ndarray]) -> dict[int, np.ndarray]:
    """Each member's parameters as one float64 vector, by fold (sorted names)."""
    folds: dict[int, list[np.ndarray]] = {}
    for name in sorted(arrays):
        folds.setdefault(int(name[4:name.index("/")]), []).append(
            arrays[name].astype(np.float64).reshape(-1))
    return {fold: np.concatenate(parts) for fold, parts in folds.items()}


def _replace_members(seed: int):  # type: ignore[no-untyped-def]
    """A corruption that replaces every member by a random one of the same norm: a model
    replacement that today's bound (change ≤ 2 × the member's norm) lets through."""
    def corrupt(arrays: dict[str, np.ndarray]) -> None:
        rng = np.random.default_rng(seed)
        for name, vector in arrays.items():
            other = rng.normal(size=vector.shape).astype(np.float32)
            arrays[name] = other * np.float32(_norm(vector) / _norm(other))
    return corrupt


def test_counts_are_capped_absolutely_and_relative_to_the_others() -> None:
    weights = capped_weights([10, 10, 10, 10, 1e30], max_examples=1e6, max_ratio=4)
    np.testing.assert_array_equal(weights, [10, 10, 10, 10, 40])
    assert weights.dtype == np.float64
    # Two sites: the liar's cap comes from the other site's count, not its own.
    np.testing.assert_array_equal(capped_weights([1e39, 10], max_examples=1e6, max_ratio=4),
                                  [40, 10])
    np.testing.assert_array_equal(
        capped_weights([5e6, 4e6, 6e6], max_examples=1e6, max_ratio=4), [1e6] * 3)
    # Honest sizes within the ratio keep their proportions.
    np.testing.assert_array_equal(capped_weights([30, 10], max_examples=1e6, max_ratio=4),
                                  [30, 10])
    with pytest.raises(ValueError, match="positive and finite"):
        capped_weights([10, float("inf")], max_examples=1e6, max_ratio=4)


@pytest.mark.parametrize("examples", [1e30, 1e39])  # 1e39 overflows float32 (max 3.4e38)
def test_an_absurd_example_count_does_not_dominate_and_the_model_stays_finite(
        tmp_path: Path, examples: float) -> None:
    store = _run(tmp_path, liar_shift=0.1, liar_examples=examples)
    latest = store.latest()
    assert latest is not None and latest.version == 1
    v0, v1 = store.load(0), store.load(1)
    assert all(np.isfinite(a).all() for a in v1.values())
    weights = {c.node_id: c.weight for c in latest.contributions}
    # Capped at max-examples-ratio (4) × the others' median (10): half of the round.
    assert weights == {1: 10.0, 2: 10.0, 3: 10.0, 4: 10.0, LIAR: 40.0}
    assert {c.node_id: c.examples for c in latest.contributions}[LIAR] == int(examples)
    honest = float(np.mean(HONEST_SHIFTS))
    for name, array in v0.items():  # every shift is below the clip: a plain weighted mean
        expected = array + (0.5 * honest + 0.5 * 0.1) * np.sign(array)
        np.testing.assert_allclose(v1[name], expected, rtol=1e-5, atol=1e-6)
    assert latest.metrics["num-examples"] == 80.0


def test_a_model_replacement_within_todays_bound_is_clipped(tmp_path: Path) -> None:
    initial_model(tmp_path / "initial")
    replace = _replace_members(7)
    # Today's validation lets it through: each member changes by about √2 × its norm.
    with np.load(tmp_path / "initial" / "arrays.npz") as data:
        reference = {name: data[name] for name in data.files}
    replaced = {k: v.copy() for k, v in reference.items()}
    replace(replaced)
    assert all(1.2 < change < 2.0 for change in check_update(replaced, reference).values())

    store = _run(tmp_path, liar_shift=0.0, liar_examples=10, corrupt=lambda a: replace(a))
    clip = ServerSettings.model_fields["clip_relative_change"].default
    latest = store.latest()
    assert latest is not None
    (liar,) = [c for c in latest.contributions if c.node_id == LIAR]
    assert all(value > clip for value in liar.change.values())  # recorded as sent
    share = liar.weight / sum(c.weight for c in latest.contributions)  # type: ignore[operator]
    assert share == pytest.approx(0.2)
    before, after = _packed(store.load(0)), _packed(store.load(1))
    for fold, g in before.items():
        move = after[fold] - g
        honest = float(np.mean(HONEST_SHIFTS)) * np.sign(g)  # the others' mean change
        # The stated bound: ‖Δ − d̄_h‖ ≤ w_p (clip·‖g‖ + ‖d̄_h‖), and ‖Δ‖ ≤ clip·‖g‖.
        bound = share * (clip * _norm(g) + _norm(honest))
        assert _norm(move - honest) <= bound * (1 + 1e-5)
        assert _norm(move) <= clip * _norm(g) * (1 + 1e-5)


@pytest.mark.parametrize("rule", ["trimmed-mean", "median"])
def test_a_robust_rule_bounds_one_poisoned_site_of_five(tmp_path: Path, rule: str) -> None:
    replace = _replace_members(11)
    store = _run(tmp_path / rule, liar_shift=0.0, liar_examples=1e30,
                 corrupt=lambda a: replace(a), aggregation_rule=rule)
    plain = _run(tmp_path / "mean", liar_shift=0.0, liar_examples=1e30,
                 corrupt=lambda a: replace(a))
    latest = store.latest()
    assert latest is not None and latest.config["aggregation-rule"] == rule
    before = _packed(store.load(0))
    robust, mean = _packed(store.load(1)), _packed(plain.load(1))
    for fold, g in before.items():
        changes = np.stack([shift * np.sign(g) for shift in HONEST_SHIFTS])
        honest = changes.mean(axis=0)
        # The stated bound: ‖Δ − d̄_h‖ ≤ ‖max_h d_h − min_h d_h‖, whatever the liar sends.
        bound = _norm(changes.max(axis=0) - changes.min(axis=0))
        assert _norm(robust[fold] - g - honest) <= bound * (1 + 1e-4) + 1e-6
        # The same attack moves the weighted mean far beyond it, clipped as it is.
        assert _norm(mean[fold] - g - honest) > 10 * bound


@pytest.mark.parametrize(("fault", "reason"), [
    (lambda a: {k: np.full_like(v, np.nan) for k, v in a.items()}, "holds NaN"),
    (lambda a: {k: v * np.float32(10) for k, v in a.items()}, "changed by"),
])
def test_a_non_finite_or_implausible_aggregate_is_never_checkpointed(  # type: ignore[no-untyped-def]
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture,
        fault, reason: str) -> None:
    real = strategy_module.aggregate
    monkeypatch.setattr(strategy_module, "aggregate",
                        lambda *args, **kwargs: fault(real(*args, **kwargs)))
    with caplog.at_level(logging.ERROR, logger="pathloop.server.strategy"):
        store = _run(tmp_path, liar_shift=0.01, liar_examples=10, num_server_rounds=2)
    assert [v.version for v in store.versions()] == [0]
    latest = store.latest()
    assert latest is not None and latest.version == 0
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert [line.split(":")[0] for line in lines] == ["round 1", "round 2"]
    assert all("aggregate refused" in line and reason in line for line in lines)
    assert all("global version 0 stays the latest" in line for line in lines)
    assert not list((tmp_path / "checkpoints").glob(".v*"))  # nothing half-written


def test_the_store_refuses_a_non_finite_version(tmp_path: Path) -> None:
    store = CheckpointStore(tmp_path)
    good = {member_key(0, PACKED): np.ones(4, np.float32)}
    store.save(good, GlobalVersion(0, None, "fedavg"))
    bad = {member_key(0, PACKED): np.array([1, np.inf, 1, 1], np.float32)}
    with pytest.raises(CheckpointError, match=r"'fold0/packed' holds NaN or infinite"):
        store.save(bad, GlobalVersion(1, 0, "fedavg"))
    assert [v.version for v in store.versions()] == [0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["v0000"]


def test_the_defences_are_run_config_keys_checked_on_load() -> None:
    settings = ServerSettings.from_run_config({
        "checkpoint-dir": "x", "aggregation-rule": "median", "clip-relative-change": 0.3,
        "max-examples": 5000, "max-examples-ratio": 2, "trim-fraction": 0.1})
    defences = settings.defences()
    assert (defences.rule, defences.clip_relative_change, defences.max_examples,
            defences.max_examples_ratio, defences.trim_fraction) == ("median", 0.3, 5000,
                                                                     2.0, 0.1)
    with pytest.raises(FederationError, match=r"clip-relative-change .* is above "
                                              "max-relative-change"):
        ServerSettings.from_run_config({"checkpoint-dir": "x", "clip-relative-change": 3})
    with pytest.raises(FederationError, match="aggregation-rule: Input should be 'mean', "
                                              "'trimmed-mean' or 'median'"):
        ServerSettings.from_run_config({"checkpoint-dir": "x", "aggregation-rule": "krum"})
    with pytest.raises(FederationError, match=r"trim-fraction: Input should be less than 0\.5"):
        ServerSettings.from_run_config({"checkpoint-dir": "x", "trim-fraction": 0.5})
    with pytest.raises(FederationError, match="max-examples-ratio: Input should be greater"):
        ServerSettings.from_run_config({"checkpoint-dir": "x", "max-examples-ratio": 0.5})


def test_the_server_cli_passes_the_defences_and_refuses_bad_ones_before_submitting(
        tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from pathloop.server.cli import _assignments, app

    assert _assignments(["max-examples-ratio=3", "aggregation-rule=median",
                         "clip-relative-change = 0.25"]) == {
        "max-examples-ratio": 3, "aggregation-rule": "median", "clip-relative-change": 0.25}
    runner = CliRunner()
    for arguments, reason in [
            (["--set", "clip-relative-change=3"], "clip-relative-change (3.0) is above"),
            (["--aggregation-rule", "krum"], "aggregation-rule: Input should be"),
            (["--set", "max-examples"], "expected KEY=VALUE")]:
        result = runner.invoke(app, ["run", str(tmp_path / "state"), *arguments])
        assert isinstance(result.exception, FederationError), result.output
        assert reason in str(result.exception)
        assert not (tmp_path / "state" / "app").exists()  # nothing submitted
