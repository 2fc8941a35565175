"""Errors of the aggregation server (the server never imports the site node's tree).

::

    FederationError                 anything the server refuses or cannot do
    ├── UpdateRejectedError         a site's update fails validation (the round goes on)
    └── CheckpointError             a global checkpoint is missing, damaged or inconsistent
"""

from __future__ import annotations


class FederationError(Exception):
    """Root of the server's deliberate errors."""


class UpdateRejectedError(FederationError):
    """A site's update is not a valid ensemble update; ``reason`` says what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CheckpointError(FederationError):
    """A global checkpoint cannot be written or read back."""


__all__ = ["CheckpointError", "FederationError", "UpdateRejectedError"]
