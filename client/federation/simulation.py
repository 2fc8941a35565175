"""Federated rounds in Flower's Simulation Runtime: every site on this machine, no network.

Flower's simulation engine (Ray) runs one virtual SuperNode per site config in actors of one
process tree and drives them with the same ServerApp logic
(:func:`pathloop.server.federation.run_federation`) and the same ClientApp handlers
(:mod:`pathloop.client.federation.client_app`) as a deployment. Only the wiring differs: a
virtual SuperNode has no node config of its own, so the i-th one is given the i-th site
config (Flower numbers them by ``partition-id``), and the run's settings are handed to the
ServerApp directly instead of through a SuperLink's run config.

For trying a federation out, teaching and the demo; hospitals use the deployment
(``pathloop server start`` and ``pathloop site join``). Needs ``flwr[simulation]`` (Ray).
This is an edge module: it plays the central team too, so it imports ``pathloop.server``.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from flwr.app import Context, Message
from flwr.clientapp import ClientApp
from flwr.common.constant import PARTITION_ID_KEY
from flwr.serverapp import Grid, ServerApp

from pathloop.client.errors import ConfigError
from pathloop.client.federation import client_app as site_app
from pathloop.client.settings import SiteSettings
from pathloop.server.contract import SITE_CONFIG_KEY
from pathloop.server.errors import FederationError
from pathloop.server.federation import FederationOutcome, run_federation
from pathloop.server.settings import ServerSettings

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class SimulationResult:
    """How the run went, and which virtual SuperNode (node id) played which site."""

    outcome: FederationOutcome
    site_names: dict[int, str]


def simulation_apps(site_configs: Sequence[Path], settings: ServerSettings,
                    outcome: list[FederationOutcome], names: Path
                    ) -> tuple[ServerApp, ClientApp]:
    """The ServerApp and ClientApp of a simulation of these sites.

    ``outcome`` receives the run's :class:`FederationOutcome`; each virtual SuperNode writes
    ``names/<node id>`` holding the site id it plays (the names a central team registers
    SuperNodes under, for the reports).
    """
    configs = [str(Path(c).resolve()) for c in site_configs]
    server = ServerApp()
    client = ClientApp()

    @server.main()
    def _serve(grid: Grid, context: Context) -> None:
        outcome.append(run_federation(grid, settings))

    def _site(context: Context) -> Context:
        partition = int(context.node_config[PARTITION_ID_KEY])
        if not 0 <= partition < len(configs):
            raise ConfigError(f"virtual SuperNode {partition}: only {len(configs)} site configs")
        name = names / str(context.node_id)
        if not name.exists():
            name.write_text(SiteSettings.from_file(Path(configs[partition])).site_id)
        return Context(run_id=context.run_id, node_id=context.node_id,
                       node_config={SITE_CONFIG_KEY: configs[partition]},
                       state=context.state, run_config=context.run_config)

    @client.train()
    def _train(message: Message, context: Context) -> Message:
        return site_app.train(message, _site(context))

    @client.evaluate()
    def _evaluate(message: Message, context: Context) -> Message:
        return site_app.evaluate(message, _site(context))

    @client.query()
    def _query(message: Message, context: Context) -> Message:
        return site_app.query(message, _site(context))

    return server, client


def run_simulated_federation(site_configs: Sequence[Path], settings: ServerSettings, *,
                             cpus_per_site: float = 1.0, show_site_logs: bool = True
                             ) -> SimulationResult:
    """Run ``settings``' rounds across the sites in Flower's Simulation Runtime.

    ``cpus_per_site`` is what Ray reserves per virtual SuperNode (how many train at once);
    ``show_site_logs`` forwards the sites' log lines to this process's output.

    Raises
    ------
    ConfigError
        Fewer sites than the settings need, or Flower's simulation extra (Ray) missing.
    FederationError
        The run did not finish.
    """
    if len(site_configs) < settings.min_available_nodes:
        raise ConfigError(f"{len(site_configs)} site configs for a federation that waits for "
                          f"{settings.min_available_nodes} sites")
    try:
        import ray  # noqa: F401  (Flower's simulation backend)
    except ImportError:
        raise ConfigError("Flower's simulation needs Ray: pip install 'flwr[simulation]'"
                          ) from None
    from flwr.simulation import run_simulation

    outcome: list[FederationOutcome] = []
    with tempfile.TemporaryDirectory(prefix="pathloop-simulation-") as folder:
        names = Path(folder)
        server, client = simulation_apps(site_configs, settings, outcome, names)
        # Flower prints its own log lines; passed on to our root logger too, each would
        # appear twice (and its DEBUG lines once).
        flower_logger = logging.getLogger("flwr")
        propagate, flower_logger.propagate = flower_logger.propagate, False
        try:
            run_simulation(server_app=server, client_app=client,
                           num_supernodes=len(site_configs),
                           backend_config={"client_resources": {"num_cpus": cpus_per_site,
                                                                "num_gpus": 0.0},
                                           "init_args": {"log_to_driver": show_site_logs}})
        finally:
            flower_logger.propagate = propagate
        site_names = {int(p.name): p.read_text() for p in names.iterdir()}
    if not outcome:
        raise FederationError("the simulated federation ended without finishing its rounds "
                              "(see the log above)")
    return SimulationResult(outcome[0], site_names)


__all__ = ["SimulationResult", "run_simulated_federation", "simulation_apps"]
