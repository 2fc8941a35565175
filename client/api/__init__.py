"""The site API: a FastAPI app factory, thin over the use cases (see :func:`create_app`)."""

from pathloop.client.api.app import create_app
from pathloop.client.api.tokens import TokenStore

__all__ = ["TokenStore", "create_app"]
