"""Who may do what on the site API: the four roles, ordered, and the rule for patches.

Roles are ordered; each includes every one below it::

    admin        tokens: list, issue and revoke users' tokens
    operator     jobs (tile, predict, rank, train: training adopts a new model version)
    reviewer     another user's claimed patch or saved correction; taking over a claim
    pathologist  view slides, tiles, worklist and masks; claim, correct, skip and release
                 patches that are unclaimed or her own

An ordered ladder rather than separate permissions: at a site every operator or admin is also
trusted to review, and a reviewer to correct, so a set of independent grants would only add
ways to misconfigure a user.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Role(StrEnum):
    """A user's role, lowest first (see the module docstring for what each allows)."""

    PATHOLOGIST = "pathologist"
    REVIEWER = "reviewer"
    OPERATOR = "operator"
    ADMIN = "admin"

    def includes(self, other: Role) -> bool:
        """Whether this role may do what ``other`` may (it is ``other`` or above it)."""
        order = list(Role)
        return order.index(self) >= order.index(other)


DEFAULT_ROLE = Role.PATHOLOGIST
"""The role of a token file entry made before roles existed, and of ``--role``'s default."""


@dataclass(frozen=True)
class Identity:
    """The user behind a request and their role."""

    user: str
    role: Role


def patch_change_refusal(identity: Identity, *, claimed_by: str | None,
                         last_author: str | None) -> str | None:
    """Why ``identity`` may not change a worklist patch (correct, revert, skip, release),
    or ``None`` when they may.

    A pathologist changes only patches nobody else has claimed and nobody else has corrected
    last; a reviewer (or above) changes any.
    """
    if identity.role.includes(Role.REVIEWER):
        return None
    if claimed_by is not None and claimed_by != identity.user:
        return f"it is claimed by {claimed_by}"
    if last_author is not None and last_author != identity.user:
        return f"its latest correction is {last_author}'s"
    return None
