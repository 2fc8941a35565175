"""The site's side of Flower: the ClientApp (:mod:`~.client_app`, messages in, the round's
use cases of :mod:`pathloop.client.usecases.rounds` out) and the Simulation Runtime driver
that runs it beside the server's logic on one machine (:mod:`~.simulation`)."""
