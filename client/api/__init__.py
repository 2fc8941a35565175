"""The site API: a FastAPI app factory (:func:`create_app`), routers by resource
(:mod:`.routes`), thin over the use cases; :mod:`.serving` runs it with uvicorn."""

from pathloop.client.api.app import create_app
from pathloop.client.api.tokens import TokenStore

__all__ = ["TokenStore", "create_app"]
