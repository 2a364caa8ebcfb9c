from __future__ import annotations

import uuid
from dataclasses import dataclass

SCOPES = ("banking", "closing", "admin")


@dataclass(frozen=True, slots=True)
class Principal:
    """The authenticated caller: a user acting for one company with a set of scopes."""

    company_id: uuid.UUID
    user_id: str
    scopes: frozenset[str]

    def has(self, scope: str) -> bool:
        return scope in self.scopes
