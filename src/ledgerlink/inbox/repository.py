"""SQL of the inbox: transactions to book and to-dos."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ledgerlink.db.base import utcnow
from ledgerlink.db.repository import RepositoryBase, scoped
from ledgerlink.models.bank import AccountStatus, BankAccount, BankTransaction, TransactionStatus
from ledgerlink.models.inbox import Todo


class TodoRepository(RepositoryBase[Todo]):
    model = Todo

    async def upsert_open(
        self, company_id: uuid.UUID, type: str, subject_key: str, data: dict[str, Any]
    ) -> bool:
        """Open (or refresh the data of) the one open to-do of (company, type, subject).
        Returns True when it was newly opened."""
        at = utcnow()
        values = {
            "id": uuid.uuid4(),
            "company_id": company_id,
            "type": type,
            "subject_key": subject_key,
            "data": data,
            "created_at": at,
            "modified_at": at,
        }
        dialect = self.session.get_bind().dialect.name
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        base = insert(Todo).values(values)
        stmt = base.on_conflict_do_update(
            index_elements=["company_id", "type", "subject_key"],
            index_where=Todo.resolved_at.is_(None),
            set_={"data": base.excluded.data, "modified_at": at},
        ).returning(Todo.id)
        returned = (await self.session.execute(stmt)).scalar_one()
        return bool(returned == values["id"])

    async def resolve(self, company_id: uuid.UUID, type: str, subject_key: str | None = None) -> None:
        stmt = update(Todo).where(
            Todo.company_id == company_id, Todo.type == type, Todo.resolved_at.is_(None)
        )
        if subject_key is not None:
            stmt = stmt.where(Todo.subject_key == subject_key)
        await self.session.execute(stmt.values(resolved_at=utcnow()))

    async def open_for(self, company_id: uuid.UUID) -> Sequence[Todo]:
        stmt = (
            scoped(select(Todo), Todo, company_id)
            .where(Todo.resolved_at.is_(None))
            .order_by(Todo.created_at, Todo.id)
        )
        return await self.all(stmt)


PAGE_COLUMNS = (
    BankTransaction.id,
    BankTransaction.account_id,
    BankTransaction.booking_date,
    BankTransaction.value_date,
    BankTransaction.amount,
    BankTransaction.currency,
    BankTransaction.counterparty,
    BankTransaction.description,
    BankTransaction.reference,
    BankTransaction.booking_status,
    BankTransaction.status,
    BankTransaction.voucher_ref,
)


class TransactionRepository(RepositoryBase[BankTransaction]):
    model = BankTransaction

    def filtered(
        self,
        company_id: uuid.UUID,
        *,
        account_id: uuid.UUID | None,
        status: TransactionStatus | None,
        booking_status: str | None,
        date_from: dt.date | None,
        date_to: dt.date | None,
        q: str | None,
    ) -> Select[Any]:
        stmt = scoped(select(BankTransaction), BankTransaction, company_id)
        if account_id is not None:
            stmt = stmt.where(BankTransaction.account_id == account_id)
        if status is not None:
            stmt = stmt.where(BankTransaction.status == status)
        if booking_status is not None:
            stmt = stmt.where(BankTransaction.booking_status == booking_status)
        if date_from is not None:
            stmt = stmt.where(BankTransaction.booking_date >= date_from)
        if date_to is not None:
            stmt = stmt.where(BankTransaction.booking_date <= date_to)
        if q:
            pattern = "%" + q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
            stmt = stmt.where(
                or_(
                    BankTransaction.counterparty.ilike(pattern, escape="\\"),
                    BankTransaction.description.ilike(pattern, escape="\\"),
                    BankTransaction.reference.ilike(pattern, escape="\\"),
                )
            )
        return stmt

    async def page(
        self, stmt: Select[Any], after: tuple[dt.date, uuid.UUID] | None, limit: int
    ) -> Sequence[BankTransaction]:
        if after is not None:
            day, tid = after
            stmt = stmt.where(
                (BankTransaction.booking_date < day)
                | ((BankTransaction.booking_date == day) & (BankTransaction.id < tid))
            )
        stmt = stmt.order_by(BankTransaction.booking_date.desc(), BankTransaction.id.desc()).limit(limit)
        return await self.all(stmt)

    async def page_rows(
        self, stmt: Select[Any], after: tuple[dt.date, uuid.UUID] | None, limit: int
    ) -> Sequence[Any]:
        """The list endpoint's page as plain rows (no ORM entities): the columns of
        :data:`PAGE_COLUMNS` from ``stmt`` (a :meth:`filtered` select), with the account's
        ``ledger_account`` joined in the same statement. Same keyset order as :meth:`page`; the
        filter uses ``ix_bank_transaction_inbox`` (company, account, status, booking_date, id)."""
        if after is not None:
            day, tid = after
            # A row comparison, so PostgreSQL seeks the index to the cursor (an OR of the two
            # conditions is only a filter over the rows before it: deep pages got slower).
            stmt = stmt.where(tuple_(BankTransaction.booking_date, BankTransaction.id) < tuple_(day, tid))
        columns: Select[Any] = stmt.with_only_columns(*PAGE_COLUMNS, BankAccount.ledger_account)  # type: ignore[assignment]
        query = (
            columns.outerjoin(
                BankAccount,
                (BankAccount.id == BankTransaction.account_id)
                & (BankAccount.company_id == BankTransaction.company_id),
            )
            .order_by(BankTransaction.booking_date.desc(), BankTransaction.id.desc())
            .limit(limit)
        )
        connection = await self.session.connection()  # Core execution: plain rows, no ORM context
        rows: Sequence[Any] = (await connection.execute(query)).all()
        return rows

    async def get_many_for_update(
        self, company_id: uuid.UUID, ids: Sequence[uuid.UUID]
    ) -> Sequence[BankTransaction]:
        stmt = scoped(select(BankTransaction), BankTransaction, company_id).where(
            BankTransaction.id.in_(list(ids))
        )
        return await self.all(stmt.with_for_update())

    async def ledger_accounts(
        self, company_id: uuid.UUID, account_ids: set[uuid.UUID]
    ) -> dict[uuid.UUID, str | None]:
        if not account_ids:
            return {}
        base: Select[Any] = select(BankAccount.id, BankAccount.ledger_account)  # type: ignore[assignment]
        stmt = scoped(base, BankAccount, company_id).where(BankAccount.id.in_(account_ids))
        return {row[0]: row[1] for row in (await self.session.execute(stmt)).all()}

    async def unbooked_per_account(self, company_id: uuid.UUID) -> list[tuple[BankAccount, int]]:
        """Accounts (not disconnected) with unbooked booked rows, and their count."""
        counts = (
            scoped(
                select(BankTransaction.account_id, func.count().label("n")),  # type: ignore[arg-type]
                BankTransaction,
                company_id,
            )
            .where(
                BankTransaction.booking_status == "booked",
                BankTransaction.status == TransactionStatus.unbooked,
            )
            .group_by(BankTransaction.account_id)
            .subquery()
        )
        stmt = (
            scoped(select(BankAccount, counts.c.n), BankAccount, company_id)
            .join(counts, counts.c.account_id == BankAccount.id)
            .where(BankAccount.status != AccountStatus.disconnected)
            .order_by(BankAccount.created_at, BankAccount.id)
        )
        return [(row[0], int(row[1])) for row in (await self.session.execute(stmt)).all()]
