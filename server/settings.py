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
``max-relative-change``  bound on a member's change relative to its norm (default 2.0)
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

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from pathloop.server.errors import FederationError

Strategy = Literal["fedavg", "fedprox"]
STRATEGIES: tuple[str, ...] = get_args(Strategy)


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

    @classmethod
    def from_run_config(cls, config: Mapping[str, Any], *, source: str = "run config"
                        ) -> ServerSettings:
        """Validate Flower's run config (kebab-case keys), or raise :class:`FederationError`
        naming ``source`` and the key."""
        try:
            return cls.model_validate(dict(config))
        except ValidationError as error:
            problem = error.errors()[0]
            key = ".".join(str(part) for part in problem["loc"]) or "(root)"
            raise FederationError(f"{source}: {key}: {problem['msg']}") from None

    def to_json(self) -> dict[str, Any]:
        """The settings as kebab-case JSON values (recorded in lineage)."""
        return self.model_dump(mode="json", by_alias=True)


__all__ = ["STRATEGIES", "ServerSettings"]
