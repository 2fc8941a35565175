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
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from pathloop.server.errors import FederationError

STRATEGIES = ("fedavg", "fedprox")


@dataclass(frozen=True)
class ServerSettings:
    """Validated run configuration of the ServerApp (see the module docstring)."""

    checkpoint_dir: Path
    initial_model: Path | None = None
    num_server_rounds: int = 2
    strategy: str = "fedavg"
    proximal_mu: float = 0.01
    fraction_train: float = 1.0
    min_train_nodes: int = 2
    min_available_nodes: int = 2
    round_timeout: float = 3600.0
    max_relative_change: float = 2.0
    local_epochs: int = 3
    learning_rate: float = 1e-3

    def __post_init__(self) -> None:
        if self.strategy not in STRATEGIES:
            raise FederationError(f"strategy {self.strategy!r}: one of {', '.join(STRATEGIES)}")
        positive = ("num_server_rounds", "min_train_nodes", "min_available_nodes",
                    "round_timeout", "max_relative_change", "local_epochs", "learning_rate")
        for name in positive:
            if not getattr(self, name) > 0:
                raise FederationError(f"{_kebab(name)} must be positive, got "
                                      f"{getattr(self, name)}")
        if not 0 < self.fraction_train <= 1:
            raise FederationError(f"fraction-train must lie in (0, 1], got "
                                  f"{self.fraction_train}")
        if self.proximal_mu < 0:
            raise FederationError(f"proximal-mu must be >= 0, got {self.proximal_mu}")

    @classmethod
    def from_run_config(cls, config: Mapping[str, Any]) -> ServerSettings:
        """Settings from Flower's run config (unknown keys are ignored: they are the app's)."""
        fields = {f: f.replace("_", "-") for f in cls.__dataclass_fields__}
        values: dict[str, Any] = {}
        for name, key in fields.items():
            if key in config:
                values[name] = config[key]
        if not values.get("checkpoint_dir"):
            raise FederationError("run config needs checkpoint-dir (the folder of the global "
                                  "versions)")
        values["checkpoint_dir"] = Path(str(values["checkpoint_dir"])).expanduser()
        if values.get("initial_model"):
            values["initial_model"] = Path(str(values["initial_model"])).expanduser()
        else:
            values.pop("initial_model", None)
        try:
            return cls(**{k: _typed(cls, k, v) for k, v in values.items()})
        except (TypeError, ValueError) as error:
            raise FederationError(f"run config: {error}") from None

    def to_json(self) -> dict[str, Any]:
        """The settings as kebab-case JSON values (recorded in lineage)."""
        return {_kebab(k): str(v) if isinstance(v, Path) else v
                for k, v in asdict(self).items()}


def _typed(cls: type[ServerSettings], name: str, value: Any) -> Any:
    default = cls.__dataclass_fields__[name].default
    if isinstance(default, bool) or isinstance(value, Path) or default is None:
        return value
    if isinstance(default, int):
        return int(value)
    if isinstance(default, float):
        return float(value)
    return value


def _kebab(name: str) -> str:
    return name.replace("_", "-")


__all__ = ["STRATEGIES", "ServerSettings"]
