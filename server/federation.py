"""One federated run of the aggregation server, Flower's Grid in and checkpoints out.

:func:`run_federation` is what the ServerApp (:mod:`pathloop.server.flower_app`) calls:

1. open the checkpoint folder; on the very first run, the initial model (``arrays.npz``
   plus ``plans.json``, exported by a site with ``pathloop model export``) becomes version 0
   and its plans become the federation's global plans (``plans.json`` in the folder);
2. resume from the newest complete version (a restarted server loses at most the round that
   was in flight);
3. have every site score that version on its held-out data, unless it already did (so the
   initial model's Dice is the first point of the per-round curve);
4. run ``num-server-rounds`` rounds of the chosen strategy: train, validate, aggregate,
   checkpoint, then evaluate on every site's held-out data (Dice per site per round goes to
   ``evaluations.jsonl``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.serverapp import Grid

from pathloop.server.checkpoints import CheckpointStore, GlobalVersion
from pathloop.server.contract import (
    METRICS,
    ConfigKey,
    MetricKey,
    PackingLayout,
    plans_digest,
)
from pathloop.server.errors import CheckpointError, FederationError, UpdateRejectedError
from pathloop.server.settings import ServerSettings
from pathloop.server.strategy import EnsembleFedAvg, EnsembleFedProx, to_record
from pathloop.server.validation import check_metrics

logger = logging.getLogger(__name__)

PLANS_NAME = "plans.json"
EVALUATIONS_NAME = "evaluations.jsonl"


@dataclass(frozen=True)
class FederationOutcome:
    """Where a run started and ended."""

    start_version: int
    final_version: int
    rejected: list[dict[str, Any]]
    #: Rounds whose aggregate was refused (non-finite or implausible): not checkpointed.
    refused_rounds: list[dict[str, Any]] = field(default_factory=list)


def run_federation(grid: Grid, settings: ServerSettings) -> FederationOutcome:
    """Run the configured rounds from the newest global version (see the module docstring).

    Raises
    ------
    FederationError
        No checkpoint and no initial model, or plans that differ from the federation's.
    """
    store = CheckpointStore(settings.checkpoint_dir)
    plans = global_plans(store.root, settings.initial_model)
    latest = store.latest()
    if latest is None:
        if settings.initial_model is None:
            raise FederationError(f"{store.root}: no global version yet and no "
                                  "initial-model in the run config")
        latest = store.save(load_initial_arrays(settings.initial_model), GlobalVersion(
            0, None, settings.strategy, plans_sha256=plans_digest(plans),
            config=settings.to_json()))
    arrays = store.load(latest.version)
    logger.info("starting from global version %d (%d arrays)", latest.version, len(arrays))
    try:
        layout = PackingLayout.of(arrays)
    except ValueError as error:
        raise CheckpointError(f"global version {latest.version}: {error}") from None
    strategy = _strategy(settings, store, plans, layout, latest.version)
    record = to_record(layout.pack(arrays))  # the members as the messages carry them
    del arrays
    if not any(row["version"] == latest.version for row in read_evaluations(store.root)):
        _evaluate_current(grid, strategy, record, settings)
    strategy.start(
        grid, record, num_rounds=settings.num_server_rounds,
        timeout=settings.round_timeout,
        train_config=ConfigRecord({ConfigKey.LOCAL_EPOCHS: settings.local_epochs,
                                   ConfigKey.LEARNING_RATE: settings.learning_rate}),
        evaluate_config=ConfigRecord())
    return FederationOutcome(latest.version, strategy.version, strategy.rejected_log,
                             strategy.refused_rounds)


def _evaluate_current(grid: Grid, strategy: EnsembleFedAvg | EnsembleFedProx,
                      arrays: ArrayRecord, settings: ServerSettings) -> None:
    """Score the version a run starts from on every site's held-out data, once: the
    initial model (so Dice per round starts before any round), or a version a killed server
    checkpointed but never got evaluated."""
    messages = strategy.configure_evaluate(0, arrays, ConfigRecord(), grid)
    replies = grid.send_and_receive(messages, timeout=settings.round_timeout)
    metrics = strategy.aggregate_evaluate(0, replies)
    logger.info("global version %d before this run's rounds: %s", strategy.version,
                dict(metrics) if metrics else "no site could score it")


def global_plans(root: Path, initial_model: Path | None) -> dict[str, Any]:
    """The federation's plans: fixed by its first run, never changed by a later one."""
    kept = root / PLANS_NAME
    offered_path = initial_model / PLANS_NAME if initial_model else None
    offered = _read_json(offered_path) if offered_path else None
    if kept.is_file():
        plans = _read_json(kept)
        if offered is not None and plans_digest(offered) != plans_digest(plans):
            raise FederationError(f"{offered_path}: differs from the federation's plans in "
                                  f"{kept}")
        return plans
    if offered is None:
        raise FederationError(f"{kept}: no global plans yet and no initial-model")
    root.mkdir(parents=True, exist_ok=True)
    partial = kept.with_suffix(".json.partial")
    partial.write_text(json.dumps(offered, indent=1))
    os.replace(partial, kept)
    return offered


def load_initial_arrays(folder: Path) -> dict[str, np.ndarray]:
    """The initial ensemble's arrays (``arrays.npz``, read without pickle)."""
    path = folder / "arrays.npz"
    try:
        with np.load(path, allow_pickle=False) as data:
            return {name: data[name] for name in data.files}
    except (OSError, ValueError) as error:
        raise CheckpointError(f"{path}: unreadable initial model ({error})") from None


def record_evaluations(root: Path, version: int, server_round: int,
                       replies: Iterable[Message],
                       sender: Callable[[Message], int] | None = None) -> list[dict[str, Any]]:
    """Append each site's evaluation of a global version to ``evaluations.jsonl``
    (``sender`` names the site a reply is about; default: its source node)."""
    rows: list[dict[str, Any]] = []
    for message in replies:
        node = sender(message) if sender else int(message.metadata.src_node_id)
        if message.has_error() or METRICS not in message.content.metric_records:
            rows.append({"version": version, "round": server_round, "node_id": node,
                         "error": message.error.reason if message.has_error()
                         else "no metrics"})
            continue
        try:
            metrics = check_metrics(dict(message.content.metric_records[METRICS]))
        except UpdateRejectedError as error:
            rows.append({"version": version, "round": server_round, "node_id": node,
                         "error": error.reason})
            continue
        rows.append({"version": version, "round": server_round, "node_id": node, **metrics})
    with open(root / EVALUATIONS_NAME, "a", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
        handle.flush()
        os.fsync(handle.fileno())
    return rows


def read_evaluations(root: Path) -> list[dict[str, Any]]:
    """Every recorded evaluation (a torn last line from a crash is skipped)."""
    path = root / EVALUATIONS_NAME
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            rows.append(json.loads(line))
        except ValueError:
            continue
    return rows


class _Evaluating:
    """Records per-site evaluations as they arrive (mixed into the strategies)."""

    checkpoints: CheckpointStore
    version: int
    sender: Callable[[Message], int]

    def aggregate_evaluate(self, server_round: int, replies: Iterable[Message]
                           ) -> MetricRecord | None:
        rows = record_evaluations(self.checkpoints.root, self.version, server_round,
                                  list(replies), self.sender)
        scored = [r for r in rows if MetricKey.DICE in r]
        if not scored:
            return None
        weights = [max(r.get(MetricKey.HELD_OUT, 1.0), 1.0) for r in scored]
        dice = float(np.average([r[MetricKey.DICE] for r in scored], weights=weights))
        return MetricRecord({MetricKey.DICE: dice, "num-sites": len(scored)})


class _FedAvg(_Evaluating, EnsembleFedAvg):
    pass


class _FedProx(_Evaluating, EnsembleFedProx):
    pass


def _strategy(settings: ServerSettings, store: CheckpointStore, plans: Mapping[str, Any],
              layout: PackingLayout, version: int) -> EnsembleFedAvg | EnsembleFedProx:
    common: dict[str, Any] = {
        "layout": layout, "start_version": version,
        "max_relative_change": settings.max_relative_change,
        "defences": settings.defences(),
        "run_config": settings.to_json(), "fraction_train": settings.fraction_train,
        "fraction_evaluate": 1.0, "min_train_nodes": settings.min_train_nodes,
        "min_evaluate_nodes": settings.min_train_nodes,
        "min_available_nodes": settings.min_available_nodes,
        "weighted_by_key": MetricKey.EXAMPLES,
    }
    if settings.strategy == "fedprox":
        return _FedProx(store, plans, proximal_mu=settings.proximal_mu, **common)
    return _FedAvg(store, plans, **common)


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise FederationError(f"{path}: unreadable ({error})") from None
    if not isinstance(data, dict):
        raise FederationError(f"{path}: not a JSON object")
    return data


__all__ = ["FederationOutcome", "global_plans", "load_initial_arrays", "read_evaluations",
           "record_evaluations", "run_federation"]
