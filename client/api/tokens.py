"""API tokens of the site service's users, kept as SHA-256 hashes in the data folder.

``<data-dir>/api-tokens.json`` (mode 0600) lists ``{"user", "role", "sha256", "created_at"}``;
the token itself is shown once, when it is made, and never stored. A user may hold several
tokens (one per browser or script), all of one role; revoking a user drops them all. An
entry without a role (a file written before roles existed) is a pathologist's.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import re
import secrets
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pathloop.client.api.roles import DEFAULT_ROLE, Identity, Role
from pathloop.client.errors import ConfigError, InputError

TOKENS_FILE = "api-tokens.json"
_USER = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class TokenStore:
    """The users allowed to call the site API, by the hash of their tokens."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._cached: tuple[tuple[int, int], list[dict[str, Any]]] | None = None

    @classmethod
    def for_data_dir(cls, data_dir: Path) -> TokenStore:
        """The token file of a site's data folder."""
        return cls(data_dir / TOKENS_FILE)

    def add(self, user: str, role: Role | str = DEFAULT_ROLE) -> str:
        """Make a new token for ``user`` with ``role``; return it (it cannot be shown again).

        Raises
        ------
        InputError
            The user name or role is not valid, or the user already holds tokens of another
            role (revoke them first: a change of role is a new token).
        """
        if not _USER.match(user):
            raise InputError(f"user name {user!r}: 1-64 letters, digits, '.', '_', '@' or '-'")
        role = parse_role(role)
        entries = self._read()
        held = {_role(e) for e in entries if e["user"] == user}
        if held - {role}:
            raise InputError(f"{user} holds {held.pop()} tokens: revoke them before giving "
                             f"{user} the role {role}")
        token = secrets.token_urlsafe(32)
        entries.append({"user": user, "role": str(role), "sha256": _digest(token),
                        "created_at": datetime.now(UTC).isoformat(timespec="seconds")})
        self._write(entries)
        return token

    def revoke(self, user: str) -> int:
        """Drop every token of ``user``; return how many there were."""
        entries = self._read()
        kept = [e for e in entries if e["user"] != user]
        self._write(kept)
        return len(entries) - len(kept)

    def users(self) -> list[str]:
        """Users holding at least one token, in the order they were added."""
        return list(self.roles())

    def roles(self) -> dict[str, Role]:
        """Each user holding at least one token and their role, in the order they were added."""
        return {e["user"]: _role(e) for e in self._read()}

    def role_of(self, user: str) -> Role | None:
        """The role of ``user``'s tokens, or ``None`` when they hold none."""
        return self.roles().get(user)

    def identity_for(self, token: str) -> Identity | None:
        """The user and role a token belongs to, or ``None`` (compared in constant time)."""
        digest = _digest(token)
        found = None
        for entry in self._read():
            if hmac.compare_digest(entry["sha256"], digest):
                found = Identity(entry["user"], _role(entry))
        return found

    def _read(self) -> list[dict[str, Any]]:
        """The entries, re-read when the file changed (``pathloop api token`` from a shell
        takes effect at once in a running service)."""
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return []
        stamp = (stat.st_mtime_ns, stat.st_size)
        if self._cached is not None and self._cached[0] == stamp:
            return list(self._cached[1])
        try:
            entries = json.loads(self.path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return []
        except (json.JSONDecodeError, UnicodeDecodeError) as error:
            raise ConfigError(f"{self.path}: not a token file ({error})") from None
        if not isinstance(entries, list) or not all(
                isinstance(e, dict) and {"user", "sha256"} <= e.keys() for e in entries):
            raise ConfigError(f"{self.path}: not a token file (expected a list of users)")
        for entry in entries:
            if str(entry.get("role", DEFAULT_ROLE)) not in set(Role):
                raise ConfigError(f"{self.path}: user {entry['user']!r} has the unknown role "
                                  f"{entry['role']!r} (one of {', '.join(Role)})")
        self._cached = (stamp, entries)
        return list(entries)

    def _write(self, entries: list[dict[str, Any]]) -> None:
        """Replace the file atomically, readable by its owner only."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        staged = self.path.with_suffix(".tmp")
        fd = os.open(staged, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            json.dump(entries, file, indent=1)
            file.flush()
            os.fsync(file.fileno())
        os.replace(staged, self.path)


def parse_role(role: Role | str) -> Role:
    """``role`` as a :class:`Role`; :class:`InputError` naming the roles when it is none."""
    try:
        return Role(role)
    except ValueError:
        raise InputError(f"role {role!r}: one of {', '.join(Role)}") from None


def _role(entry: dict[str, Any]) -> Role:
    return Role(entry.get("role", DEFAULT_ROLE))


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()
