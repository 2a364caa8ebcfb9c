"""Transactions to book ("Transaktioner att bokföra") and to-dos ("Att göra")."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.db.base import utcnow
from ledgerlink.inbox.errors import PendingNotBookable, TransactionsNotFound
from ledgerlink.inbox.repository import PAGE_FIELDS, TodoRepository, TransactionFilter, TransactionRepository
from ledgerlink.inbox.schemas import TransactionRead
from ledgerlink.models.bank import ImportedTransaction, TransactionStatus
from ledgerlink.models.inbox import TodoType
from ledgerlink.pagination import Keyset

TRANSACTIONS_KEYSET = Keyset("transactions", dt.date, uuid.UUID)


def _item(row: Sequence[Any]) -> dict[str, Any]:
    """One ``TransactionRead`` as JSON values, from a row of :data:`PAGE_FIELDS` + ``ledger_account``
    (a :meth:`TransactionRepository.page_rows` row, or :func:`_read`'s values of an ORM row)."""
    (id_, account_id, booking_date, value_date, amount, currency, counterparty, description, reference,
     booking_status, status, voucher_ref, ledger_account) = row  # fmt: skip
    return {
        "id": str(id_),
        "bank_account_id": str(account_id),
        "booking_date": booking_date.isoformat(),
        "value_date": value_date.isoformat() if value_date is not None else None,
        "amount": format(amount, "f"),
        "currency": currency,
        "counterparty": counterparty,
        "description": description,
        "reference": reference,
        "booking_status": "pending" if booking_status == "pending" else "booked",
        "status": str(status),  # a TransactionStatus, or its string from a prebuilt read
        "ledger_account": ledger_account,
        "voucher_ref": voucher_ref,
    }


def _read(tx: ImportedTransaction, ledger: dict[uuid.UUID, str | None]) -> TransactionRead:
    """The same item from an ORM row (PATCH and bulk answers)."""
    values = [getattr(tx, f) for f in PAGE_FIELDS]
    return TransactionRead.model_validate(_item([*values, ledger.get(tx.account_id)]))


class InboxService:
    async def list_transactions(
        self,
        session: AsyncSession,
        company_id: uuid.UUID,
        by: TransactionFilter,
        *,
        limit: int,
        cursor: str | None,
    ) -> tuple[dict[str, Any], list[uuid.UUID]]:
        """A page as JSON-ready plain values (and the ids of its items, as UUIDs), in the field order of ``Page[TransactionRead]`` (the
        endpoint's declared response model): built from column rows in one pass, no ORM entities and
        no model validation on this hot path (:func:`_read`, the ORM path, goes through the same
        :func:`_item`; a test checks that both give the same item)."""
        repo = TransactionRepository(session)
        after = TRANSACTIONS_KEYSET.decode(cursor)
        found = await repo.page_rows(company_id, by, after, limit + 1)
        rows, next_cursor = TRANSACTIONS_KEYSET.cut(found, limit, lambda r: (r[2], r[0]))
        return {"items": [_item(r) for r in rows], "next_cursor": next_cursor}, [r[0] for r in rows]

    async def set_status(
        self,
        session: AsyncSession,
        company_id: uuid.UUID,
        ids: Sequence[uuid.UUID],
        status: TransactionStatus,
        voucher_ref: str | None = None,
    ) -> list[TransactionRead]:
        """All or nothing: unknown/foreign ids → 404 naming them; pending rows cannot be booked → 422."""
        repo = TransactionRepository(session)
        wanted = list(dict.fromkeys(ids))
        rows = list(await repo.get_many_for_update(company_id, wanted))
        found = {r.id for r in rows}
        missing = [str(i) for i in wanted if i not in found]
        if missing:
            raise TransactionsNotFound(f"unknown transactions: {', '.join(missing)}", extra={"ids": missing})
        if status == TransactionStatus.booked:
            pending = [str(r.id) for r in rows if r.booking_status == "pending"]
            if pending:
                raise PendingNotBookable(
                    f"pending transactions cannot be marked booked: {', '.join(pending)}",
                    loc=["body", "ids"],
                    extra={"ids": pending},
                )
        at = utcnow()
        for row in rows:
            if row.status != status:
                row.status = status
                row.status_changed_at = at
            if status == TransactionStatus.booked and voucher_ref is not None:
                row.voucher_ref = voucher_ref
            elif status != TransactionStatus.booked:
                row.voucher_ref = None
        await session.flush()
        ledger = await repo.ledger_accounts(company_id, {r.account_id for r in rows})
        order = {i: n for n, i in enumerate(wanted)}
        return [_read(r, ledger) for r in sorted(rows, key=lambda r: order[r.id])]

    async def todos(self, session: AsyncSession, company_id: uuid.UUID) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for account, count in await TransactionRepository(session).unbooked_per_account(company_id):
            items.append(
                {
                    "type": TodoType.transactions_to_book.value,
                    "bank_account_id": str(account.id),
                    "account_name": account.display_name or account.name,
                    "ledger_account": account.ledger_account,
                    "count": count,
                }
            )
        for todo in await TodoRepository(session).open_for(company_id):
            items.append(
                {
                    **todo.data,
                    "type": todo.type,
                    "id": str(todo.id),
                    "created_at": todo.created_at.isoformat(),
                }
            )
        return items


inbox = InboxService()
