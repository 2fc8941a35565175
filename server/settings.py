"""The aggregation server's settings, read once from Flower's run config.

Run-config keys (kebab-case, in ``[tool.flwr.app.config]`` or ``flwr run --run-config``):

``checkpoint-dir``       folder of the global versions (required)
``initial-model``        folder with ``arrays.npz`` and ``plans.json`` (first run only)
``num-server-rounds``    rounds in this run (default 2); a restarted run resumes
``strategy``             ``fedavg`` (default) or ``fedprox``
``proximal-mu``          FedProx's μ (default 0.01)
``fraction-train``       share of connected sites sampled per round (default 1.0)
``min-train-nodes``      fewest sites a round trains on (default 2)
``min-available-nodes``  fewest connected sites before a round starts (default 2)
``round-timeout``        seconds a round waits for replies (default 3600)
``max-relative-change``  bound on a member's change relative to its norm (default 2.0):
                         an update beyond it is refused, and so is an aggregate
``clip-relative-change`` a member's change (site minus global) beyond this multiple of
                         the global member's norm is scaled down to it (default 0.2;
                         at most ``max-relative-change``)
``max-examples``         cap on a site's averaging weight, its training patches
                         (default 1000000)
``max-examples-ratio``   cap on a site's weight relative to the median count of the other
                         sites of the round (default 4.0, at least 1)
``aggregation-rule``     ``mean`` (weighted, default), ``trimmed-mean`` or ``median``
                         (coordinate-wise, unweighted: Flower's FedTrimmedAvg / FedMedian)
``trim-fraction``        share of updates ``trimmed-mean`` cuts from each tail (default 0.2)
``local-epochs``         epochs each site fine-tunes per round (default 3)
``learning-rate``        the sites' initial learning rate (default 0.001)

Validated the way a site's settings are (pydantic, kebab-case keys, unknown keys refused):
an error names where the values came from and the key, e.g. ``run config: round-timeout:
Input should be greater than 0``. The Flower App declares exactly these keys
(:mod:`~pathloop.server.flower_project`), so a run config holds no others.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from pathloop.server.aggregation import Defences
from pathloop.server.errors import FederationError

Strategy = Literal["fedavg", "fedprox"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)
AggregationRule = Literal["mean", "trimmed-mean", "median"]
AGGREGATION_RULES: tuple[str, ...] = get_args(AggregationRule)


class ServerSettings(BaseModel):
    """Validated run configuration of the ServerApp (see the module docstring)."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True,
                              alias_generator=lambda name: name.replace("_", "-"))

    checkpoint_dir: Path
    initial_model: Path | None = None
    num_server_rounds: int = Field(2, gt=0)
    strategy: Strategy = "fedavg"
    proximal_mu: float = Field(0.01, ge=0)
    fraction_train: float = Field(1.0, gt=0, le=1)
    min_train_nodes: int = Field(2, gt=0)
    min_available_nodes: int = Field(2, gt=0)
    round_timeout: float = Field(3600.0, gt=0)
    max_relative_change: float = Field(2.0, gt=0)
    clip_relative_change: float = Field(Defences.clip_relative_change, gt=0)
    max_examples: int = Field(int(Defences.max_examples), gt=0)
    max_examples_ratio: float = Field(Defences.max_examples_ratio, ge=1)
    aggregation_rule: AggregationRule = "mean"
    trim_fraction: float = Field(Defences.trim_fraction, ge=0, lt=0.5)
    local_epochs: int = Field(3, gt=0)
    learning_rate: float = Field(1e-3, gt=0)

    @field_validator("checkpoint_dir", mode="before")
    @classmethod
    def _needed(cls, value: Any) -> Any:
        if value in ("", None):
            raise ValueError("the folder of the global versions is needed")
        return value

    @field_validator("initial_model", mode="before")
    @classmethod
    def _unset_when_empty(cls, value: Any) -> Any:
        return None if value == "" else value  # the app's declared default means "unset"

    @field_validator("checkpoint_dir", "initial_model")
    @classmethod
    def _expand(cls, value: Path | None) -> Path | None:
        return value.expanduser() if value is not None else None

    @model_validator(mode="after")
    def _clip_within_refusal(self) -> ServerSettings:
        if self.clip_relative_change > self.max_relative_change:
            raise ValueError(
                f"clip-relative-change ({self.clip_relative_change}) is above "
                f"max-relative-change ({self.max_relative_change}): updates beyond the "
                "latter are refused, so the clip would never act")
        return self

    @classmethod
    def from_run_config(cls, config: Mapping[str, Any], *, source: str = "run config"
                        ) -> ServerSettings:
        """Validate Flower's run config (kebab-case keys), or raise :class:`FederationError`
        naming ``source`` and the key."""
        try:
            return cls.model_validate(dict(config))
        except ValidationError as error:
            problem = error.errors()[0]
            if not problem["loc"]:  # a check across keys names them in its message
                reason = problem.get("ctx", {}).get("error", problem["msg"])
                raise FederationError(f"{source}: {reason}") from None
            key = ".".join(str(part) for part in problem["loc"])
            raise FederationError(f"{source}: {key}: {problem['msg']}") from None

    def defences(self) -> Defences:
        """The aggregation defences these settings configure."""
        return Defences(clip_relative_change=self.clip_relative_change,
                        max_examples=self.max_examples,
                        max_examples_ratio=self.max_examples_ratio,
                        rule=self.aggregation_rule, trim_fraction=self.trim_fraction)

    def to_json(self) -> dict[str, Any]:
        """The settings as kebab-case JSON values (recorded in lineage)."""
        return self.model_dump(mode="json", by_alias=True)


__all__ = ["AGGREGATION_RULES", "STRATEGIES", "AggregationRule", "ServerSettings"]
