"""The one exception tree of the site node.

Every error a user, a file or another site can cause is a :class:`PathloopError`. Each carries
the data a user needs to act (the file, what was expected, what was found): what went wrong
and where, not how a caller reports it. The CLI prints ``str(error)`` on one line and exits
non-zero; the site API answers with the HTTP status its table gives the class
(:mod:`pathloop.client.api.errors`); anything outside this tree is a bug and keeps its
traceback.

::

    PathloopError
    ├── ConfigError                   bad or missing settings
    ├── InputError                    something a user or a file sent is wrong
    │   ├── PathOutsideRootsError     a path outside the configured data roots
    │   ├── SlideError                a slide cannot be used
    │   │   ├── SlideNotFoundError
    │   │   ├── UnsupportedSlideError
    │   │   ├── CorruptSlideError
    │   │   └── MissingResolutionError
    │   ├── RegionError               a requested region or resolution is impossible
    │   │   └── TileOutOfRangeError   a deep-zoom tile outside the slide's pyramid
    │   ├── MaskError                 an uploaded mask of the wrong size, type or format
    │   └── ProtocolError             a federation message breaks the wire contract
    │       └── RoundLimitError       a round asks for settings outside the site's limits
    ├── StoreError                    the local store
    │   ├── RecordNotFoundError
    │   ├── ConflictError             a save based on a stale version
    │   └── SchemaError               the database is not at the expected migration
    ├── LimitError                    a configured limit on queued work is reached
    └── Cancelled                     long work stopped on request before it stored anything
"""

from __future__ import annotations

from pathlib import Path


class PathloopError(Exception):
    """Root of every error pathloop raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message

    def __reduce__(self) -> tuple[object, ...]:
        # Subclasses take other arguments than the message; rebuild from the attributes so
        # the error crosses process boundaries (Ray's simulated sites pickle what they raise).
        return (_rebuild_error, (type(self), self.message, dict(self.__dict__)))


def _rebuild_error(cls: type[PathloopError], message: str,
                   state: dict[str, object]) -> PathloopError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class ConfigError(PathloopError):
    """The site settings are missing, malformed or unsafe."""


class InputError(PathloopError):
    """Something a user, a file or another site sent is wrong."""


class PathOutsideRootsError(InputError):
    """A path resolves outside every configured data root."""

    def __init__(self, path: Path | str, roots: list[Path]) -> None:
        self.path = Path(path)
        self.roots = list(roots)
        shown = ", ".join(str(r) for r in roots) or "(none configured)"
        super().__init__(f"{path}: outside the configured slide roots ({shown})")


class SlideError(InputError):
    """A slide file cannot be used; ``path`` names it and ``reason`` says why."""

    def __init__(self, path: Path | str, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{path}: {reason}")


class SlideNotFoundError(SlideError):
    """The slide file does not exist (or is not a regular file)."""


class UnsupportedSlideError(SlideError):
    """No slide backend can read this file's format."""


class CorruptSlideError(SlideError):
    """The file claims a known format but its content is damaged (empty, truncated, …)."""


class MissingResolutionError(SlideError):
    """The slide records no µm/px and the user gave none."""


class RegionError(InputError):
    """A requested region, size or resolution cannot be read from this slide."""


class TileOutOfRangeError(RegionError):
    """A deep-zoom level, column or row outside the slide's pyramid."""


class MaskError(InputError):
    """An uploaded label mask has the wrong size, data type, labels or encoding."""


class ProtocolError(InputError):
    """A message from the aggregation server breaks the wire contract (version, plans)."""


class RoundLimitError(ProtocolError):
    """A round's setting ``key`` is not a finite number within this site's limits.

    ``allowed`` says the range in words and which ``[federation]`` setting bounds it.
    """

    def __init__(self, key: str, value: object, allowed: str) -> None:
        self.key = key
        self.value = value
        self.allowed = allowed
        super().__init__(f"round config: {key!r} = {value!r} refused: this site allows "
                         f"{allowed}")


class StoreError(PathloopError):
    """The local store failed or refused an operation."""


class RecordNotFoundError(StoreError):
    """A record asked for by id or hash does not exist."""


class ConflictError(StoreError):
    """A save was based on a version that is no longer the latest."""


class SchemaError(StoreError):
    """The database is not at the migration this code expects."""


class LimitError(PathloopError):
    """A configured limit on queued work is reached; the request may succeed later."""


class Cancelled(PathloopError):
    """Long work stopped because it was asked to, before it stored anything.

    Raised from inside a loop (tiling, prediction, ranking, training) by the check its
    caller passed in; whatever the work had written is dropped, as after any other error.
    """


__all__ = [
    "Cancelled",
    "ConfigError",
    "ConflictError",
    "CorruptSlideError",
    "InputError",
    "LimitError",
    "MaskError",
    "MissingResolutionError",
    "PathOutsideRootsError",
    "PathloopError",
    "ProtocolError",
    "RecordNotFoundError",
    "RegionError",
    "RoundLimitError",
    "SchemaError",
    "SlideError",
    "SlideNotFoundError",
    "StoreError",
    "TileOutOfRangeError",
    "UnsupportedSlideError",
]
