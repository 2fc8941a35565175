"""``pathloop demo``: the site loop on sample slides the demo makes itself.

:mod:`~.sites` builds the simulated sites (sample slides, each site's node folder and
store), :mod:`~.uga` is its UGA stage (baseline, worklists, corrections, retraining),
:mod:`~.rounds` its federated stage (Flower's Simulation Runtime or a loopback deployment),
:mod:`~.report` its table (held-out Dice per site and stage, ``demo-summary.json``), and
:mod:`~.run` runs them in turn (:func:`run_demo`). The modules import one another in that
order only. The demo plays the central team too, which is why it imports
``pathloop.server``; sites in a hospital never do.
"""

from pathloop.client.demo.run import DemoSummary, run_demo, viewer_settings
from pathloop.client.demo.sites import DemoRow, site_settings

__all__ = ["DemoRow", "DemoSummary", "run_demo", "site_settings", "viewer_settings"]
