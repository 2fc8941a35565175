"""The wire contract between the aggregation server and the sites.

Both sides import this module (the standard library and numpy only), so a key can only be
spelt one way. A message between them holds exactly:

``arrays`` (an ArrayRecord)
    The fold ensemble's weights, one float32 vector per member named ``fold<k>/packed``:
    the member's parameters (``fold<k>/<parameter>``, :func:`member_key`) concatenated in
    the order of the round's :class:`PackingLayout`. Flower moves every array as separate
    objects, each its own request, so ~600 small parameter arrays per message cost minutes
    on a SuperLink; 5 vectors cost nothing. Nothing else travels as an array.
``config`` (a ConfigRecord, server → site)
    The :class:`ConfigKey` entries: protocol version, round, the global plans (nnU-Net's
    architecture, normalisation and patch size, as JSON) and their SHA-256, the packing
    layout (names and shapes, as JSON), the local schedule and FedProx's μ.
``metrics`` (a MetricRecord, site → server)
    Numbers only, from :data:`SITE_METRICS`: counts and Dice, never a name, path or pixel.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

PROTOCOL_VERSION = 2  # 2: members travel packed (PackingLayout)

ARRAYS = "arrays"
CONFIG = "config"
METRICS = "metrics"

# Flower's message types the ClientApp answers.
TRAIN = "train"
EVALUATE = "evaluate"
QUERY = "query"

#: The SuperNode's node-config key naming the site's pathloop TOML file.
SITE_CONFIG_KEY = "site-config"

# The Flower App's identity: the central team writes a bundle naming these components
# (:mod:`pathloop.server.flower_project`) and a site runs a run only if its bundle is that
# bundle and nothing more (:mod:`pathloop.client.federation.bundle`).
APP_NAME = "pathloop"
SERVER_APP = "pathloop.server.flower_app:app"
CLIENT_APP = "pathloop.client.federation.client_app:app"
#: The files of the bundle (``.info/CONTENT`` is Flower's list of the others' digests).
APP_FILES = frozenset({"pyproject.toml", "README.md", ".info/CONTENT"})


class ConfigKey:
    """Keys of the server's ConfigRecord (kebab-case, Flower's convention)."""

    PROTOCOL = "protocol-version"
    ROUND = "server-round"
    GLOBAL_VERSION = "global-version"
    PLANS = "plans-json"
    PLANS_SHA256 = "plans-sha256"
    LAYOUT = "packing-layout"
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
    #: 1 when the site made the evaluated version its current model, 0 when its gate refused.
    ADOPTED = "adopted"
    #: Model versions the site has refused to adopt so far (its held-out Dice gate).
    REFUSED = "num-refused"


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


#: The parameter name of a member's packed vector: ``fold<k>/packed``.
PACKED = "packed"


@dataclass(frozen=True)
class PackingLayout:
    """The order and shapes in which every member's parameters are packed into one vector.

    All members of an ensemble share one architecture, so one list of ``(parameter,
    shape)`` serves them all. :meth:`pack` and :meth:`unpack` raise :class:`ValueError`
    naming the first mismatch.
    """

    folds: tuple[int, ...]
    parameters: tuple[tuple[str, tuple[int, ...]], ...]

    @classmethod
    def of(cls, arrays: Mapping[str, np.ndarray]) -> PackingLayout:
        """The layout of per-parameter arrays named ``fold<k>/<parameter>``."""
        by_fold: dict[int, dict[str, tuple[int, ...]]] = {}
        for name, array in arrays.items():
            fold, parameter = parse_member_key(name)
            by_fold.setdefault(fold, {})[parameter] = tuple(int(n) for n in array.shape)
        if not by_fold:
            raise ValueError("no member arrays to pack")
        folds = tuple(sorted(by_fold))
        first = by_fold[folds[0]]
        for fold in folds[1:]:
            if by_fold[fold] != first:
                raise ValueError(f"member fold{fold} has other parameters than fold{folds[0]}")
        return cls(folds, tuple(sorted(first.items())))

    @property
    def size(self) -> int:
        """Elements of one member's packed vector."""
        return sum(int(np.prod(shape, dtype=np.int64)) for _, shape in self.parameters)

    def to_json(self) -> str:
        return json.dumps({"folds": list(self.folds),
                           "parameters": [[n, list(s)] for n, s in self.parameters]})

    @classmethod
    def from_json(cls, text: str) -> PackingLayout:
        try:
            data = json.loads(text)
            folds = tuple(int(f) for f in data["folds"])
            parameters = tuple((str(n), tuple(int(d) for d in s)) for n, s in data["parameters"])
        except (ValueError, TypeError, KeyError) as error:
            raise ValueError(f"packing layout is not valid JSON of folds and parameters "
                             f"({error})") from None
        if not folds or not parameters or any(d < 0 for _, s in parameters for d in s):
            raise ValueError("packing layout without folds, parameters or with negative sizes")
        return cls(folds, parameters)

    def pack(self, arrays: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """``fold<k>/packed`` float32 vectors from per-parameter arrays."""
        expected = {member_key(k, n) for k in self.folds for n, _ in self.parameters}
        if set(arrays) != expected:
            missing = sorted(expected - set(arrays))
            extra = sorted(set(arrays) - expected)
            raise ValueError(f"arrays do not fit the layout: missing {missing[:3]}, "
                             f"unexpected {extra[:3]}")
        packed = {}
        for fold in self.folds:
            parts = []
            for name, shape in self.parameters:
                array = arrays[member_key(fold, name)]
                if tuple(array.shape) != shape:
                    raise ValueError(f"{member_key(fold, name)!r} has shape {array.shape}, "
                                     f"the layout says {shape}")
                parts.append(np.asarray(array, dtype=np.float32).reshape(-1))
            packed[member_key(fold, PACKED)] = np.concatenate(parts)
        return packed

    def unpack(self, packed: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Per-parameter arrays (views into the vectors) from ``fold<k>/packed`` vectors."""
        expected = {member_key(k, PACKED) for k in self.folds}
        if set(packed) != expected:
            raise ValueError(f"packed arrays {sorted(packed)[:5]}, expected "
                             f"{sorted(expected)}")
        arrays = {}
        for fold in self.folds:
            vector = packed[member_key(fold, PACKED)]
            if vector.ndim != 1 or vector.shape[0] != self.size:
                raise ValueError(f"fold{fold}/packed has shape {vector.shape}, the layout "
                                 f"needs ({self.size},)")
            offset = 0
            for name, shape in self.parameters:
                count = int(np.prod(shape, dtype=np.int64))
                arrays[member_key(fold, name)] = vector[offset:offset + count].reshape(shape)
                offset += count
        return arrays


def plans_digest(plans: Mapping[str, Any]) -> str:
    """SHA-256 of the plans as canonical JSON (sorted keys, no spaces)."""
    canonical = json.dumps(plans, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


__all__ = [
    "APP_FILES",
    "APP_NAME",
    "ARRAYS",
    "CLIENT_APP",
    "CONFIG",
    "EVALUATE",
    "METRICS",
    "PACKED",
    "PROTOCOL_VERSION",
    "QUERY",
    "SERVER_APP",
    "SITE_CONFIG_KEY",
    "SITE_METRICS",
    "TRAIN",
    "ConfigKey",
    "MetricKey",
    "PackingLayout",
    "member_key",
    "parse_member_key",
    "plans_digest",
]
