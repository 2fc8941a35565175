"""The Flower ServerApp of the aggregation server: run config in, :func:`run_federation`.

Thin by design (Flower's own examples): it builds :class:`ServerSettings` from the run config
and hands Flower's Grid to :func:`pathloop.server.federation.run_federation`.
"""

from __future__ import annotations

import logging

from flwr.app import Context
from flwr.serverapp import Grid, ServerApp

from pathloop.server.federation import run_federation
from pathloop.server.settings import ServerSettings

logger = logging.getLogger(__name__)

app = ServerApp()


@app.main()
def main(grid: Grid, context: Context) -> None:
    """Run this run's rounds from the newest global version."""
    outcome = run_federation(grid, ServerSettings.from_run_config(dict(context.run_config)))
    logger.info("run finished: global version %d → %d, %d updates rejected, %d rounds' "
                "aggregates refused", outcome.start_version, outcome.final_version,
                len(outcome.rejected), len(outcome.refused_rounds))


__all__ = ["app", "main"]
