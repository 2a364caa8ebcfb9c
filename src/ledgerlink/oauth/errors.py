from __future__ import annotations

from ledgerlink.errors import BadRequest


class StateMismatch(BadRequest):
    """The ``state`` is unknown, already used, expired or bound to another company or connection."""

    code, title = "state_mismatch", "State mismatch"
