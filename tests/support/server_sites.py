"""Fake sites for the server's tests: an initial model, sites answering train/evaluate with
shifted weights (or a corruption), and the run settings they are driven with."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from flwr.app import Message, MetricRecord, RecordDict
from numpy.typing import NDArray

from pathloop.server.contract import (
    ARRAYS,
    CONFIG,
    EVALUATE,
    METRICS,
    PROTOCOL_VERSION,
    MetricKey,
    member_key,
)
from pathloop.server.settings import ServerSettings
from pathloop.server.strategy import to_numpy, to_record

PLANS: dict[str, Any] = {"configurations": {"2d": {"patch_size": [128, 128]}},
                         "plans_name": "tiny"}
Arrays = dict[str, NDArray[np.float32]]


def initial_model(folder: Path, plans: dict[str, Any] = PLANS) -> Path:
    """A random 5-fold model folder (``arrays.npz`` and ``plans.json``), as a central team
    ships the federation's initial model."""
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    arrays: dict[str, Any] = {member_key(k, name): rng.normal(size=shape).astype(np.float32)
              for k in range(5) for name, shape in (("conv.weight", (4, 3, 3, 3)),
                                                    ("conv.bias", (4,)))}
    np.savez(folder / "arrays.npz", **arrays)
    (folder / "plans.json").write_text(json.dumps(plans))
    return folder


def fake_site(shift: float, examples: int, *, corrupt: Callable[[Arrays], None] | None = None,
              dice: float = 0.7) -> Callable[[Message], Message]:
    """A site answering train with the global weights moved by ``shift`` (then ``corrupt``),
    and evaluate with ``dice``; ``.seen`` holds the round configs it received."""
    seen: list[dict[str, Any]] = []

    def answer(message: Message) -> Message:
        config = dict(message.content.config_records[CONFIG])
        seen.append(config)
        if message.metadata.message_type == EVALUATE:
            return Message(RecordDict({METRICS: MetricRecord({
                MetricKey.DICE: dice, MetricKey.HELD_OUT: 2,
                MetricKey.PROTOCOL: PROTOCOL_VERSION})}), reply_to=message)
        arrays = {k: v + np.float32(shift) * np.sign(v)
                  for k, v in to_numpy(message.content.array_records[ARRAYS]).items()}
        if corrupt is not None:
            corrupt(arrays)
        return Message(RecordDict({
            ARRAYS: to_record(arrays),
            METRICS: MetricRecord({MetricKey.EXAMPLES: examples, MetricKey.CORRECTIONS: 5,
                                   MetricKey.PROTOCOL: PROTOCOL_VERSION})}),
            reply_to=message)

    answer.seen = seen  # type: ignore[attr-defined]
    return answer


def server_settings(tmp_path: Path, **changes: object) -> ServerSettings:
    values: dict[str, object] = {"checkpoint-dir": str(tmp_path / "checkpoints"),
                                 "initial-model": str(tmp_path / "initial"),
                                 "num-server-rounds": 2, "min-train-nodes": 3,
                                 "min-available-nodes": 3, "fraction-train": 1.0}
    return ServerSettings.from_run_config(values | {k.replace("_", "-"): v
                                                    for k, v in changes.items()})
