"""The wire contract between the aggregation server and the sites.

Both sides import this module (it needs nothing but the standard library), so a key can
only be spelt one way. A message between them holds exactly:

``arrays`` (an ArrayRecord)
    The fold ensemble's weights, one array per parameter of each member, named
    ``fold<k>/<parameter>`` (:func:`member_key`); nothing else travels as an array.
``config`` (a ConfigRecord, server → site)
    The :class:`ConfigKey` entries: protocol version, round, the global plans (nnU-Net's
    architecture, normalisation and patch size, as JSON) and their SHA-256, the local
    schedule and FedProx's μ.
``metrics`` (a MetricRecord, site → server)
    Numbers only, from :data:`SITE_METRICS`: counts and Dice, never a name, path or pixel.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any

PROTOCOL_VERSION = 1

ARRAYS = "arrays"
CONFIG = "config"
METRICS = "metrics"

# Flower's message types the ClientApp answers.
TRAIN = "train"
EVALUATE = "evaluate"
QUERY = "query"

#: The SuperNode's node-config key naming the site's pathloop TOML file.
SITE_CONFIG_KEY = "site-config"


class ConfigKey:
    """Keys of the server's ConfigRecord (kebab-case, Flower's convention)."""

    PROTOCOL = "protocol-version"
    ROUND = "server-round"
    GLOBAL_VERSION = "global-version"
    PLANS = "plans-json"
    PLANS_SHA256 = "plans-sha256"
    LOCAL_EPOCHS = "local-epochs"
    LEARNING_RATE = "learning-rate"
    PROXIMAL_MU = "proximal-mu"


class MetricKey:
    """Keys of a site's MetricRecord."""

    PROTOCOL = "protocol-version"
    #: Training patches of the round: FedAvg's weight (Flower's default weighting key).
    EXAMPLES = "num-examples"
    CORRECTIONS = "num-corrections"
    DICE = "dice"
    TRAIN_SECONDS = "train-seconds"
    SLIDES = "num-slides"
    PENDING = "num-pending"
    HELD_OUT = "num-held-out"


#: Every metric a site may send; anything else in a reply is refused.
SITE_METRICS = frozenset(v for k, v in vars(MetricKey).items() if k.isupper())

_MEMBER = re.compile(r"^fold(\d+)/(.+)$")


def member_key(fold: int, parameter: str) -> str:
    """The array name of one parameter of ensemble member ``fold``."""
    return f"fold{fold}/{parameter}"


def parse_member_key(key: str) -> tuple[int, str]:
    """``(fold, parameter)`` of an array name; :class:`ValueError` if it is not one."""
    match = _MEMBER.match(key)
    if match is None:
        raise ValueError(f"{key!r} is not a member array name (fold<k>/<parameter>)")
    return int(match.group(1)), match.group(2)


def plans_digest(plans: Mapping[str, Any]) -> str:
    """SHA-256 of the plans as canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(plans, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


__all__ = [
    "ARRAYS",
    "CONFIG",
    "EVALUATE",
    "METRICS",
    "PROTOCOL_VERSION",
    "QUERY",
    "SITE_CONFIG_KEY",
    "SITE_METRICS",
    "TRAIN",
    "ConfigKey",
    "MetricKey",
    "member_key",
    "parse_member_key",
    "plans_digest",
]
