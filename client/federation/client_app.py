"""The Flower ClientApp of a site: messages in, :mod:`pathloop.client.usecases.rounds` out.

The SuperNode names the site's config file in its node config::

    flower-supernode … --node-config "site-config='/etc/pathloop/site.toml'"

Replies hold the ensemble's arrays and numbers only. A round whose settings break the site's
limits (``[federation]`` ``max-*``) is refused before anything is loaded or trained. A failure
the site can explain (a :class:`PathloopError`) is logged in full here and answered with an
error reply naming only its kind, and any other failure as an internal error: error messages
may name local files, and no path leaves the site.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

import numpy as np
from flwr.app import Array, ArrayRecord, Context, Error, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from pathloop.client.errors import ConfigError, PathloopError, ProtocolError
from pathloop.client.settings import SiteSettings
from pathloop.client.store import Store
from pathloop.client.usecases.rounds import (
    LocalData,
    RoundConfig,
    evaluate_round,
    site_status,
    train_round,
)
from pathloop.server.contract import (
    ARRAYS,
    CONFIG,
    METRICS,
    SITE_CONFIG_KEY,
    ConfigKey,
    PackingLayout,
)

logger = logging.getLogger(__name__)

#: Error code of a refused or failed round (Flower reserves small codes for its own).
SITE_ERROR = 3001

app = ClientApp()


def site_settings(context: Context) -> SiteSettings:
    """The site's settings from the file its SuperNode's node config names."""
    path = context.node_config.get(SITE_CONFIG_KEY)
    if not path:
        raise ConfigError(f"node config has no {SITE_CONFIG_KEY!r} (the site's TOML file)")
    return SiteSettings.from_file(Path(str(path)))


@app.train()
def train(message: Message, context: Context) -> Message:
    """Fine-tune the global ensemble locally; reply with weights and counts."""
    def run() -> RecordDict:
        settings = site_settings(context)
        config = RoundConfig.parse(dict(message.content.config_records[CONFIG]),
                                   settings.federation)
        layout = _layout(message)
        arrays = _arrays(message, layout)
        data = LocalData.from_settings(settings)
        with Store.open(settings) as store:
            weights, metrics = train_round(settings, store, data, arrays, config)
        try:
            packed = layout.pack(weights)
        except ValueError as error:
            raise ProtocolError(f"the fine-tuned ensemble does not fit the round's packing "
                                f"layout: {error}") from None
        return RecordDict({ARRAYS: ArrayRecord({k: Array(v) for k, v in packed.items()}),
                           METRICS: MetricRecord(dict(metrics))})

    return _reply(message, run)


@app.evaluate()
def evaluate(message: Message, context: Context) -> Message:
    """Score the aggregated ensemble on held-out tiles; adopt it and refresh the worklist
    only if the site's gate does."""
    def run() -> RecordDict:
        settings = site_settings(context)
        config = RoundConfig.parse(dict(message.content.config_records[CONFIG]),
                                   settings.federation)
        data = LocalData.from_settings(settings)
        with Store.open(settings) as store:
            metrics = evaluate_round(settings, store, data,
                                     _arrays(message, _layout(message)), config)
        return RecordDict({METRICS: MetricRecord(dict(metrics))})

    return _reply(message, run)


@app.query()
def query(message: Message, context: Context) -> Message:
    """Counts of slides, corrections and pending worklist patches."""
    def run() -> RecordDict:
        settings = site_settings(context)
        with Store.open(settings) as store:
            return RecordDict({METRICS: MetricRecord(dict(site_status(settings, store)))})

    return _reply(message, run)


def _layout(message: Message) -> PackingLayout:
    text = message.content.config_records[CONFIG].get(ConfigKey.LAYOUT)
    if not isinstance(text, str):
        raise ProtocolError(f"round config has no {ConfigKey.LAYOUT!r}")
    try:
        return PackingLayout.from_json(text)
    except ValueError as error:
        raise ProtocolError(str(error)) from None


def _arrays(message: Message, layout: PackingLayout) -> dict[str, np.ndarray]:
    """The global ensemble, one array per parameter, from the message's packed vectors."""
    record = message.content.array_records[ARRAYS]
    try:
        return layout.unpack({name: array.numpy() for name, array in record.items()})
    except ValueError as error:
        raise ProtocolError(f"global ensemble: {error}") from None


def _reply(message: Message, run: Callable[[], RecordDict]) -> Message:
    try:
        return Message(run(), reply_to=message)
    except PathloopError as error:
        logger.error("%s refused: %s", message.metadata.message_type, error)
        reason = f"{type(error).__name__} at the site (see its log)"
    except Exception:  # a bug: its text (paths, values) stays in the site's log too
        logger.exception("%s failed", message.metadata.message_type)
        reason = "internal error at the site (see its log)"
    return Message(Error(code=SITE_ERROR, reason=reason), reply_to=message)


__all__ = ["SITE_CONFIG_KEY", "app", "evaluate", "query", "site_settings", "train"]
