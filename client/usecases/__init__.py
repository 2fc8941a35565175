"""What a site can do, one module per verb group of the CLI and the site API.

:mod:`~.slides`
    ``slides add|info``, ``tile``: describe, ingest, find and tile slides.
:mod:`~.models`
    ``model train|import``: train fold ensembles, take a shipped one, load one.
:mod:`~.loop`
    ``predict``, ``rank``: the UGA loop on stored slides, and corrections saved as masks.
:mod:`~.review`
    the viewer's worklist: masks, saves, undo, accept, keep, skip; ``annotate``.
:mod:`~.rounds`
    the site's side of a federated round (adopt, train, evaluate, status).
:mod:`~.adoption`
    the gate on what becomes the site's current model (held-out Dice, margin, refusals).
:mod:`~.quality`
    ``quality inspect``: AI²Seg inspections of image sets and slide regions;
    :mod:`~.inspection_review` scores them at any α, γ and stores the decisions.
:mod:`~.exports`
    ``export worklist|corrections|findings``: GeoJSON for QuPath.

The contract, for every function here: the caller (an edge: the CLI, the site API, the Flower
ClientApp, the demo) builds the :class:`~pathloop.client.settings.SiteSettings` and opens the
:class:`~pathloop.client.store.Store`, and hands both in; the use case returns frozen records
(dataclasses or the store's records) and raises :class:`~pathloop.client.errors.PathloopError`
for anything a user can fix. No use case prints, reads the environment or imports a web,
CLI or federation framework (import-linter checks the last).
"""
