"""The aggregation strategy: Flower's FedAvg / FedProx plus validation, defences and lineage.

:class:`EnsembleFedAvg` keeps Flower's sampling, messaging and weighting (by each site's
``num-examples``: its training patches, capped) and adds what a hospital federation needs:

- every round's config carries the protocol version, the global version being trained,
  the global nnU-Net plans with their SHA-256 (sites refuse to train under other plans) and
  the packing layout (the members travel as one vector each, see
  :class:`~pathloop.server.contract.PackingLayout`);
- every reply is validated (:mod:`pathloop.server.validation`) before it may enter the
  global model; a bad one is logged and recorded as rejected while the round goes on;
- one site cannot take the model over (:mod:`pathloop.server.aggregation`): example counts
  are capped (absolutely and relative to the other sites) in float64, each member's change
  is clipped relative to the global member's norm, and the rule is the weighted mean or
  Flower's coordinate-wise trimmed mean (``FedTrimmedAvg``'s ``trim_mean``) or median
  (``FedMedian``'s), applied member by member;
- an aggregate that is non-finite or moved a member beyond ``max-relative-change`` is never
  checkpointed: the round is skipped with an error in the log, the version stays;
- failed or missing replies do not stall a round: Flower's ``timeout`` bounds the wait and
  the round aggregates what arrived (at least ``min_train_nodes`` are sampled);
- every aggregated ensemble is checkpointed with its lineage
  (:mod:`pathloop.server.checkpoints`), so a restarted server resumes from the last one.

:class:`EnsembleFedProx` is the same with FedProx's ``proximal-mu`` sent to the sites.
"""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
from flwr.app import Array, ArrayRecord, ConfigRecord, Message, MetricRecord
from flwr.common.constant import SUPERLINK_NODE_ID
from flwr.serverapp import Grid
from flwr.serverapp.strategy import FedAvg, FedProx
from flwr.serverapp.strategy.fedtrimmedavg import trim_mean
from numpy.lib import format as npy_format

from pathloop.server.aggregation import (
    Defences,
    Reducer,
    aggregate,
    capped_weights,
    clip_scale,
)
from pathloop.server.checkpoints import CheckpointStore, GlobalVersion, SiteContribution
from pathloop.server.contract import (
    ARRAYS,
    METRICS,
    PROTOCOL_VERSION,
    ConfigKey,
    MetricKey,
    PackingLayout,
    plans_digest,
)
from pathloop.server.errors import AggregateRejectedError, UpdateRejectedError
from pathloop.server.validation import (
    MAX_RELATIVE_CHANGE,
    UpdateValidator,
    check_aggregate,
    check_metrics,
)

logger = logging.getLogger(__name__)

NumpyArrays = dict[str, np.ndarray]


def to_numpy(record: ArrayRecord) -> NumpyArrays:
    """An ArrayRecord's arrays by name: read-only views of the message bytes, no copy.

    Each array's bytes are a ``.npy`` file; its header is parsed with numpy's own reader
    (never pickle) and the data viewed in place. Anything but a plain numeric C-order array
    raises :class:`ValueError`.
    """
    return {name: _view(name, array) for name, array in record.items()}


def _view(name: str, array: Array) -> np.ndarray:
    data = array.data
    header = io.BytesIO(data[:4096])
    try:
        version = npy_format.read_magic(header)
        if version == (1, 0):
            shape, fortran, dtype = npy_format.read_array_header_1_0(header)
        elif version == (2, 0):
            shape, fortran, dtype = npy_format.read_array_header_2_0(header)
        else:
            raise ValueError(f"npy version {version}")
    except ValueError as error:
        raise ValueError(f"{name!r}: not a .npy array ({error})") from None
    if fortran or dtype.hasobject or dtype.kind not in "fiub":
        raise ValueError(f"{name!r}: only numeric C-order arrays are accepted, got {dtype}")
    count = int(np.prod(shape, dtype=np.int64))
    offset = header.tell()
    if len(data) - offset != count * dtype.itemsize:
        raise ValueError(f"{name!r}: {len(data) - offset} data bytes for shape {shape}")
    return np.frombuffer(data, dtype=dtype, count=count, offset=offset).reshape(shape)


def robust_reducer(rule: str, trim_fraction: float = 0.2) -> Reducer | None:
    """Flower's coordinate-wise rule for ``rule`` (``None``: the weighted mean).

    ``"trimmed-mean"`` is :func:`flwr.serverapp.strategy.fedtrimmedavg.trim_mean` (what
    ``FedTrimmedAvg`` applies to each layer), cutting ``⌊trim_fraction · n⌋`` updates from
    each tail; ``"median"`` is ``np.median`` over the sites (what ``FedMedian`` applies).
    """
    if rule == "mean":
        return None
    if rule == "trimmed-mean":
        if not 0 <= trim_fraction < 0.5:
            raise ValueError(f"trim fraction {trim_fraction} is not in [0, 0.5)")
        return lambda stacked: trim_mean(stacked, trim_fraction)
    if rule == "median":
        return lambda stacked: np.median(stacked, axis=0)
    raise ValueError(f"unknown aggregation rule {rule!r} (mean, trimmed-mean or median)")


def to_record(arrays: Mapping[str, np.ndarray]) -> ArrayRecord:
    """Name → array as an ArrayRecord."""
    return ArrayRecord({name: Array(np.ascontiguousarray(a)) for name, a in arrays.items()})


class _Lineage:
    """What the strategies share: plans, validation, checkpoints, the current version.

    Mixed in before Flower's strategy, so ``super()`` reaches FedAvg's or FedProx's methods.
    """

    strategy_name = "fedavg"

    def _setup(self, checkpoints: CheckpointStore, plans: Mapping[str, Any], *,
               layout: PackingLayout, start_version: int, max_relative_change: float,
               defences: Defences, run_config: Mapping[str, Any]) -> None:
        self.checkpoints = checkpoints
        self.layout = layout
        self.layout_json = layout.to_json()
        self.plans_json = json.dumps(plans, sort_keys=True)
        self.plans_sha256 = plans_digest(plans)
        self.version = start_version
        self.max_relative_change = max_relative_change
        self.defences = defences
        self._reducer = robust_reducer(defences.rule, defences.trim_fraction)
        self.run_config = dict(run_config)
        self.rejected_log: list[dict[str, Any]] = []
        #: Rounds whose aggregate was refused: ``{"round": …, "reason": …}``.
        self.refused_rounds: list[dict[str, Any]] = []
        self._global: NumpyArrays = {}
        self._sent: list[Message] = []

    def configure_train(self, server_round: int, arrays: ArrayRecord, config: ConfigRecord,
                        grid: Grid) -> Iterable[Message]:
        """Flower's sampling (FedProx adds ``proximal-mu``), plus the contract's keys."""
        self._stamp(config, arrays)
        return self._remember(super().configure_train(  # type: ignore[misc]
            server_round, arrays, config, grid))

    def configure_evaluate(self, server_round: int, arrays: ArrayRecord,
                           config: ConfigRecord, grid: Grid) -> Iterable[Message]:
        """Flower's evaluation messages, with the contract's keys (the new version)."""
        self._stamp(config)
        return self._remember(super().configure_evaluate(  # type: ignore[misc]
            server_round, arrays, config, grid))

    def _remember(self, messages: Iterable[Message]) -> list[Message]:
        """Keep the round's messages: the grid stamps their ids when it pushes them."""
        self._sent = list(messages)
        return self._sent

    def sender(self, reply: Message) -> int:
        """The site a reply is about. An error the SuperLink makes for a site that went
        away (no heartbeat) comes from the SuperLink itself; its ``reply_to`` names the
        message, and that message names the site."""
        source = int(reply.metadata.src_node_id)
        if source != SUPERLINK_NODE_ID:
            return source
        for sent in self._sent:
            if sent.metadata.message_id == reply.metadata.reply_to_message_id:
                return int(sent.metadata.dst_node_id)
        return source

    def aggregate_train(self, server_round: int, replies: Iterable[Message]
                        ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        """Validate every reply, aggregate the accepted ones member-wise with the defences,
        check the aggregate and checkpoint it."""
        return self._aggregate(server_round, list(replies))

    def _stamp(self, config: ConfigRecord, arrays: ArrayRecord | None = None) -> None:
        if arrays is not None:  # training: the reference updates are validated against
            self._global = to_numpy(arrays)
            self._validator = UpdateValidator(self._global,
                                              max_relative_change=self.max_relative_change)
        config[ConfigKey.PROTOCOL] = PROTOCOL_VERSION
        config[ConfigKey.GLOBAL_VERSION] = self.version
        config[ConfigKey.PLANS] = self.plans_json
        config[ConfigKey.PLANS_SHA256] = self.plans_sha256
        config[ConfigKey.LAYOUT] = self.layout_json

    def _aggregate(self, server_round: int, replies: Iterable[Message]
                   ) -> tuple[ArrayRecord | None, MetricRecord | None]:
        accepted: list[tuple[int, NumpyArrays, dict[str, float], dict[int, float]]] = []
        rejected: list[dict[str, Any]] = []
        for message in replies:
            node = self.sender(message)
            if message.has_error():
                rejected.append({"node_id": node, "round": server_round,
                                 "reason": f"site error: {message.error.reason}"})
                continue
            try:
                accepted.append((node, *self._check_reply(message)))
            except UpdateRejectedError as error:
                rejected.append({"node_id": node, "round": server_round,
                                 "reason": error.reason})
        for entry in rejected:
            logger.warning("round %d: update from node %d rejected: %s", server_round,
                           entry["node_id"], entry["reason"])
        self.rejected_log += rejected
        if not accepted:
            logger.warning("round %d: no valid update; global version %d unchanged",
                           server_round, self.version)
            return None, None
        defences = self.defences
        weights = capped_weights([metrics[MetricKey.EXAMPLES] for _, _, metrics, _ in accepted],
                                 max_examples=defences.max_examples,
                                 max_ratio=defences.max_examples_ratio)
        scales = [{fold: clip_scale(value, defences.clip_relative_change)
                   for fold, value in change.items()} for _, _, _, change in accepted]
        for (node, _, metrics, change), weight in zip(accepted, weights, strict=True):
            if weight < metrics[MetricKey.EXAMPLES]:
                logger.warning("round %d: node %d reported %.6g training patches; weighed "
                               "as %.6g (max-examples / max-examples-ratio)", server_round,
                               node, metrics[MetricKey.EXAMPLES], weight)
            clipped = sorted(f for f, v in change.items() if v > defences.clip_relative_change)
            if clipped:
                logger.warning("round %d: node %d's change of members %s clipped to %g× their "
                               "global norm", server_round, node, clipped,
                               defences.clip_relative_change)
        if defences.rule == "trimmed-mean" and int(defences.trim_fraction * len(accepted)) < 1:
            logger.warning("round %d: trimmed-mean over %d sites cuts none (trim-fraction "
                           "%g): a plain mean this round", server_round, len(accepted),
                           defences.trim_fraction)
        aggregated = aggregate(self._global, [arrays for _, arrays, _, _ in accepted],
                               weights, scales, reducer=self._reducer)
        try:
            check_aggregate(aggregated, self._validator)
        except AggregateRejectedError as error:
            logger.error("round %d: %s; round skipped, global version %d stays the latest",
                         server_round, error.reason, self.version)
            self.refused_rounds.append({"round": server_round, "reason": error.reason})
            return None, None
        total = float(weights.sum())
        round_metrics = {key: sum(float(w) * metrics.get(key, 0.0) for (_, _, metrics, _), w
                                  in zip(accepted, weights, strict=True)) / total
                         for key in sorted({k for _, _, m, _ in accepted for k in m})
                         if key != MetricKey.EXAMPLES}
        round_metrics[MetricKey.EXAMPLES] = total
        contributions = [SiteContribution(
            node, int(metrics[MetricKey.EXAMPLES]), int(metrics.get(MetricKey.CORRECTIONS, 0)),
            metrics, weight=float(weight), change={str(f): v for f, v in change.items()})
            for (node, _, metrics, change), weight in zip(accepted, weights, strict=True)]
        saved = self.checkpoints.save(self.layout.unpack(aggregated), GlobalVersion(
            version=self.version + 1, parent=self.version, strategy=self.strategy_name,
            contributions=contributions, rejected=rejected, metrics=round_metrics,
            plans_sha256=self.plans_sha256,
            config=self.run_config | {"server-round": server_round}))
        self.version = saved.version
        logger.info("round %d: global version %d from %d sites (%d rejected)", server_round,
                    saved.version, len(contributions), len(rejected))
        return to_record(aggregated), MetricRecord(dict[str, Any](round_metrics))

    def _check_reply(self, message: Message
                     ) -> tuple[NumpyArrays, dict[str, float], dict[int, float]]:
        """The reply's arrays, metrics and each member's relative change, or
        :class:`UpdateRejectedError`."""
        content = message.content
        if set(content.keys()) != {ARRAYS, METRICS}:
            raise UpdateRejectedError(f"reply holds records {sorted(content.keys())}, "
                                      f"expected {sorted([ARRAYS, METRICS])}")
        if content.config_records or len(content.array_records) != 1:
            raise UpdateRejectedError("reply holds records of unexpected kinds")
        metrics = check_metrics(dict(content.metric_records[METRICS]))
        if metrics.get(MetricKey.PROTOCOL) != PROTOCOL_VERSION:
            raise UpdateRejectedError(f"protocol version {metrics.get(MetricKey.PROTOCOL)}, "
                                      f"the server speaks {PROTOCOL_VERSION}")
        if not metrics.get(MetricKey.EXAMPLES, 0) > 0:
            raise UpdateRejectedError("no training patches reported (num-examples)")
        try:
            arrays = to_numpy(content.array_records[ARRAYS])
        except (TypeError, ValueError) as error:
            raise UpdateRejectedError(f"arrays do not deserialise ({error})") from None
        return arrays, metrics, self._validator.check(arrays)


class EnsembleFedAvg(_Lineage, FedAvg):
    """FedAvg over the fold ensemble, weighted by training patches, with lineage.

    Parameters
    ----------
    checkpoints:
        Where each global version is kept.
    plans:
        The global nnU-Net plans (sent to every site each round).
    layout:
        How the members' parameters are packed into the messages' vectors (the arrays
        Flower moves are packed; checkpoints keep one array per parameter).
    start_version:
        The global version the run starts from (the latest checkpoint on a resume).
    max_relative_change:
        Bound on a member's change relative to its global norm (validation of each update
        and of the aggregate).
    defences:
        Example-count caps, clipping and the aggregation rule (default: :class:`Defences`'
        defaults, the weighted mean).
    run_config:
        Recorded in each version's lineage.
    **fedavg:
        Flower's FedAvg arguments (fractions, minimum nodes).
    """

    def __init__(self, checkpoints: CheckpointStore, plans: Mapping[str, Any], *,
                 layout: PackingLayout, start_version: int = 0,
                 max_relative_change: float = MAX_RELATIVE_CHANGE,
                 defences: Defences | None = None,
                 run_config: Mapping[str, Any] | None = None, **fedavg: Any) -> None:
        FedAvg.__init__(self, **fedavg)
        self._setup(checkpoints, plans, layout=layout, start_version=start_version,
                    max_relative_change=max_relative_change,
                    defences=defences or Defences(), run_config=run_config or {})


class EnsembleFedProx(_Lineage, FedProx):
    """FedProx (``proximal-mu`` sent to the sites) with the same validation and lineage."""

    strategy_name = "fedprox"

    def __init__(self, checkpoints: CheckpointStore, plans: Mapping[str, Any], *,
                 layout: PackingLayout, proximal_mu: float, start_version: int = 0,
                 max_relative_change: float = MAX_RELATIVE_CHANGE,
                 defences: Defences | None = None,
                 run_config: Mapping[str, Any] | None = None, **fedavg: Any) -> None:
        FedProx.__init__(self, proximal_mu=proximal_mu, **fedavg)
        self._setup(checkpoints, plans, layout=layout, start_version=start_version,
                    max_relative_change=max_relative_change,
                    defences=defences or Defences(), run_config=run_config or {})


__all__ = ["EnsembleFedAvg", "EnsembleFedProx", "robust_reducer", "to_numpy", "to_record"]
