"""The site API's routes, one :class:`fastapi.APIRouter` per resource, each thin over
:mod:`pathloop.client.usecases` (:data:`ROUTERS` in the order the app includes them)."""

from pathloop.client.api.routes import (
    inspections,
    jobs,
    patches,
    site,
    slides,
    tiles,
    tokens,
    worklist,
)

ROUTERS = (site.router, slides.router, tiles.router, worklist.router, patches.router,
           inspections.router, jobs.router, tokens.router)

__all__ = ["ROUTERS"]
