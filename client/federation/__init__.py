"""The site's side of Flower: the ClientApp (:mod:`~.client_app`, messages in, the round's
use cases of :mod:`pathloop.client.usecases.rounds` out), the site node that runs it in a
deployment (:mod:`~.site_node` and :mod:`~.clientapp_task`: the installed ClientApp only,
after :mod:`~.bundle` has checked the run's app bundle is pathloop's) and the Simulation
Runtime driver that runs it beside the server's logic on one machine (:mod:`~.simulation`)."""
