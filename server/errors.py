"""Errors of the aggregation server (the server never imports the site node's tree).

::

    FederationError                 anything the server refuses or cannot do
    ├── UpdateRejectedError         a site's update fails validation (the round goes on)
    ├── AggregateRejectedError      a round's aggregate is non-finite or implausible (the
    │                               round is skipped, the previous version stays latest)
    └── CheckpointError             a global checkpoint is missing, damaged or inconsistent

The ``pathloop`` command catches this root beside the site node's ``PathloopError``, both
named once in ``pathloop.client.cli.context.USER_ERRORS``, and prints either as one line.
The two trees stay apart on purpose: the aggregation host installs no site node, so this
tree cannot derive from the site's, and a neutral base in the server for the site's tree to
derive from would make every site error depend on the server package.
"""

from __future__ import annotations


class FederationError(Exception):
    """Root of the server's deliberate errors."""


class UpdateRejectedError(FederationError):
    """A site's update is not a valid ensemble update; ``reason`` says what is wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class AggregateRejectedError(FederationError):
    """A round's aggregate may not become a global version; ``reason`` says why."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class CheckpointError(FederationError):
    """A global checkpoint cannot be written or read back."""


__all__ = ["AggregateRejectedError", "CheckpointError", "FederationError", "UpdateRejectedError"]
