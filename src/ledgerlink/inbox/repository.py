"""SQL of the inbox's two tables: to-dos (every feature's) and bank transactions (written by the sync,
read and decided on by the inbox). Each has its one repository here."""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, fields
from decimal import Decimal
from functools import lru_cache
from typing import Any

from sqlalchemy import (
    Date,
    Integer,
    Select,
    String,
    Uuid,
    bindparam,
    delete,
    func,
    or_,
    select,
    text,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ledgerlink.auth.principal import Principal
from ledgerlink.db.base import utcnow
from ledgerlink.db.prebuilt import Prebuilt
from ledgerlink.db.repository import RepositoryBase, scoped
from ledgerlink.models.bank import AccountStatus, BankAccount, ImportedTransaction, TransactionStatus
from ledgerlink.models.inbox import Todo, TodoType


class TodoRepository(RepositoryBase[Todo]):
    """The one owner of ``todo``: every feature opens and resolves its to-dos here."""

    model = Todo

    async def upsert_open(
        self,
        company_id: uuid.UUID,
        type: TodoType,
        subject_key: str,
        data: dict[str, Any],
        *,
        at: dt.datetime | None = None,
    ) -> bool:
        """Open (or refresh the data of) the one open to-do of (company, type, subject) in one
        statement (``INSERT ... ON CONFLICT`` on the partial unique index of open to-dos, PostgreSQL and
        SQLite alike, so two writers never race). Returns True when it was newly opened."""
        at = at or utcnow()
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

    async def resolve(
        self,
        company_id: uuid.UUID,
        types: TodoType | Sequence[TodoType],
        subject_keys: str | Sequence[str] | None = None,
        *,
        at: dt.datetime | None = None,
    ) -> None:
        """Resolve the company's open to-dos of ``types`` (one or several), about ``subject_keys`` (one
        or several; None: whatever the subject)."""
        kinds = [types] if isinstance(types, str) else list(types)
        stmt = update(Todo).where(
            Todo.company_id == company_id, Todo.type.in_(kinds), Todo.resolved_at.is_(None)
        )
        if subject_keys is not None:
            keys = [subject_keys] if isinstance(subject_keys, str) else list(subject_keys)
            if not keys:
                return
            stmt = stmt.where(Todo.subject_key.in_(keys))
        await self.session.execute(stmt.values(resolved_at=at or utcnow()))

    async def open_of_type(self, type: TodoType) -> Sequence[Todo]:
        """Every company's open to-dos of ``type`` (system-wide: for the cron passes)."""
        stmt = select(Todo).where(Todo.type == type, Todo.resolved_at.is_(None))
        return await self.all(stmt)

    async def open_one(self, company_id: uuid.UUID, type: TodoType, subject_key: str) -> Todo | None:
        stmt = scoped(select(Todo), Todo, company_id).where(
            Todo.type == type, Todo.subject_key == subject_key, Todo.resolved_at.is_(None)
        )
        return await self.one_or_none(stmt)

    async def open_for(self, company_id: uuid.UUID) -> Sequence[Todo]:
        stmt = (
            scoped(select(Todo), Todo, company_id)
            .where(Todo.resolved_at.is_(None))
            .order_by(Todo.created_at, Todo.id)
        )
        return await self.all(stmt)


# --------------------------------------------------------------------------- bank transactions


@dataclass(frozen=True, slots=True)
class TransactionRow:
    """A bank transaction as stored: the adapter's transaction normalised for the database, with its
    per-account identity. Its fields are the content columns of ``bank_transaction`` (their one list:
    :data:`ROW_COLUMNS`); the table adds the keys, the user's decision and the timestamps."""

    identity: str
    provider_id: str | None
    booking_status: str
    booking_date: dt.date
    value_date: dt.date | None
    amount: Decimal
    currency: str
    counterparty: str | None
    description: str | None
    reference: str | None
    raw: dict[str, Any] | None


#: The content columns, in the order of :class:`TransactionRow`.
ROW_COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(TransactionRow))
#: What a re-sync may change (``status``, ``voucher_ref`` and ``first_seen_at`` never: the user's
#: decision stays; ``raw`` is rewritten but does not make a row count as updated).
MUTABLE_COLUMNS: tuple[str, ...] = tuple(c for c in ROW_COLUMNS if c not in ("identity", "raw"))
#: Every column a write sets, in table order (also what a bulk ``COPY`` of the table names).
WRITE_COLUMNS: tuple[str, ...] = (
    "id",
    "company_id",
    "account_id",
    *(c for c in ROW_COLUMNS if c != "raw"),
    "status",
    "raw",
    "first_seen_at",
    "last_seen_at",
)
#: PostgreSQL element type of each content column's array in the ``unnest`` write.
_PG_ARRAY_TYPES = {
    "identity": "varchar",
    "provider_id": "varchar",
    "booking_status": "varchar",
    "booking_date": "date",
    "value_date": "date",
    "amount": "numeric",
    "currency": "varchar",
    "counterparty": "text",
    "description": "text",
    "reference": "varchar",
    "raw": "text",
}


def _pg_upsert_sql() -> str:
    """The PostgreSQL batch upsert, generated from :data:`ROW_COLUMNS`: one ``INSERT ... SELECT FROM
    unnest(arrays)`` (one array parameter per column whatever the batch size), ``ON CONFLICT DO UPDATE``
    only where the content changed (``IS DISTINCT FROM``: no dead tuples, not counted as updated),
    ``RETURNING (xmax = 0)`` to tell inserts from updates."""
    content = ", ".join(ROW_COLUMNS)
    selected = ", ".join("u.raw::jsonb" if c == "raw" else f"u.{c}" for c in ROW_COLUMNS)
    arrays = ", ".join(f"CAST(:{c} AS {_PG_ARRAY_TYPES[c]}[])" for c in ROW_COLUMNS)
    updates = ", ".join(f"{c} = EXCLUDED.{c}" for c in (*MUTABLE_COLUMNS, "raw", "last_seen_at"))
    mine = ", ".join(f"bank_transaction.{c}" for c in MUTABLE_COLUMNS)
    theirs = ", ".join(f"EXCLUDED.{c}" for c in MUTABLE_COLUMNS)
    return f"""
    INSERT INTO bank_transaction (id, company_id, account_id, {content}, status, first_seen_at, last_seen_at)
    SELECT u.id, :company_id, :account_id, {selected}, 'unbooked', :seen_at, :seen_at
    FROM unnest(CAST(:id AS uuid[]), {arrays}) AS u(id, {content})
    ON CONFLICT (account_id, identity) DO UPDATE SET {updates}
    WHERE ({mine}) IS DISTINCT FROM ({theirs})
    RETURNING (xmax = 0) AS inserted
    """


_PG_UPSERT = text(_pg_upsert_sql())

#: The inbox list's columns (positional in :meth:`TransactionRepository.page_rows`, then the account's
#: ``ledger_account``): the fields of a ``TransactionRead``.
PAGE_FIELDS: tuple[str, ...] = (
    "id",
    "account_id",
    "booking_date",
    "value_date",
    "amount",
    "currency",
    "counterparty",
    "description",
    "reference",
    "booking_status",
    "status",
    "voucher_ref",
)


@dataclass(frozen=True, slots=True)
class TransactionFilter:
    """The inbox list's filters; None filters nothing. ``q`` is text in counterparty, description or
    reference."""

    account_id: uuid.UUID | None = None
    status: TransactionStatus | None = None
    booking_status: str | None = None
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    q: str | None = None


@dataclass(frozen=True, slots=True)
class PageShape:
    """Which of the inbox list's filters a request uses (each shape is one prebuilt statement)."""

    account: bool
    status: bool
    booking_status: bool
    date_from: bool
    date_to: bool
    q: bool
    after: bool

    @classmethod
    def of(cls, by: TransactionFilter, after: bool) -> PageShape:
        return cls(
            by.account_id is not None,
            by.status is not None,
            by.booking_status is not None,
            by.date_from is not None,
            by.date_to is not None,
            bool(by.q),
            after,
        )


@lru_cache(maxsize=128)  # 2**7 shapes at most
def page_statement(shape: PageShape) -> Prebuilt:
    """The inbox page's statement for ``shape``, with bind parameters ``company_id``, ``limit`` and
    those of the filters used: ``account_id``, ``status`` (its string), ``booking_status``,
    ``date_from``, ``date_to``, ``pattern`` (an escaped ILIKE pattern), ``after_day`` + ``after_id``
    (the keyset, as a row comparison so PostgreSQL seeks the index to the cursor; an OR of the two
    conditions is only a filter over the rows before it)."""
    T = ImportedTransaction
    stmt: Select[Any] = select(*(getattr(T, f) for f in PAGE_FIELDS), BankAccount.ledger_account)
    stmt = stmt.select_from(T).outerjoin(
        BankAccount, (BankAccount.id == T.account_id) & (BankAccount.company_id == T.company_id)
    )
    stmt = stmt.where(T.company_id == bindparam("company_id", type_=Uuid()))
    if shape.account:
        stmt = stmt.where(T.account_id == bindparam("account_id", type_=Uuid()))
    if shape.status:
        stmt = stmt.where(T.status == bindparam("status", type_=String()))
    if shape.booking_status:
        stmt = stmt.where(T.booking_status == bindparam("booking_status", type_=String()))
    if shape.date_from:
        stmt = stmt.where(T.booking_date >= bindparam("date_from", type_=Date()))
    if shape.date_to:
        stmt = stmt.where(T.booking_date <= bindparam("date_to", type_=Date()))
    if shape.q:
        pattern = bindparam("pattern", type_=String())
        stmt = stmt.where(
            or_(
                T.counterparty.ilike(pattern, escape="\\"),
                T.description.ilike(pattern, escape="\\"),
                T.reference.ilike(pattern, escape="\\"),
            )
        )
    if shape.after:
        stmt = stmt.where(
            tuple_(T.booking_date, T.id)
            < tuple_(bindparam("after_day", type_=Date()), bindparam("after_id", type_=Uuid()))
        )
    stmt = stmt.order_by(T.booking_date.desc(), T.id.desc()).limit(bindparam("limit", type_=Integer()))
    return Prebuilt(stmt)


class TransactionRepository(RepositoryBase[ImportedTransaction]):
    """The one owner of ``bank_transaction``: the sync's set-based writes of one account's rows (keyed
    by account and identity) and the inbox's reads and decisions.

    Writes. PostgreSQL: :data:`_PG_UPSERT` per batch; ``status``/``voucher_ref`` are never touched, so
    a row the user booked or ignored keeps that decision. SQLite (embedded default): Core
    ``insert().on_conflict_do_update`` over the same columns.
    """

    model = ImportedTransaction

    # ------------------------------------------------------------------ the sync's writes

    async def upsert(
        self,
        company_id: uuid.UUID,
        account_id: uuid.UUID,
        rows: Sequence[TransactionRow],
        seen_at: dt.datetime,
    ) -> tuple[int, int]:
        """Upsert one batch; returns (inserted, updated)."""
        if not rows:
            return 0, 0
        if self.session.get_bind().dialect.name != "postgresql":
            batch = {"company_id": company_id, "account_id": account_id, "first_seen_at": seen_at}
            return await self._upsert_generic(rows, {**batch, "last_seen_at": seen_at})
        params: dict[str, Any] = {c: [getattr(r, c) for r in rows] for c in ROW_COLUMNS}
        params["raw"] = [json.dumps(r.raw, default=str) if r.raw else None for r in rows]
        params.update(
            company_id=company_id, account_id=account_id, seen_at=seen_at, id=[uuid.uuid4() for _ in rows]
        )
        flags = (await self.session.execute(_PG_UPSERT, params)).scalars().all()
        inserted = sum(1 for f in flags if f)
        return inserted, len(flags) - inserted

    async def _upsert_generic(self, rows: Sequence[TransactionRow], batch: dict[str, Any]) -> tuple[int, int]:
        """The upsert without PostgreSQL (the embedded SQLite default); ``batch`` holds the columns every
        row of the batch shares (company, account, when seen)."""
        existing = set(
            (
                await self.session.execute(
                    select(ImportedTransaction.identity).where(
                        ImportedTransaction.account_id == batch["account_id"],
                        ImportedTransaction.identity.in_([r.identity for r in rows]),
                    )
                )
            ).scalars()
        )
        fixed = {**batch, "status": TransactionStatus.unbooked}
        values = [{"id": uuid.uuid4(), **fixed, **{c: getattr(r, c) for c in ROW_COLUMNS}} for r in rows]
        stmt = sqlite_insert(ImportedTransaction).values(values)
        stmt = stmt.on_conflict_do_update(
            index_elements=["account_id", "identity"],
            set_={c: stmt.excluded[c] for c in (*MUTABLE_COLUMNS, "raw", "last_seen_at")},
        )
        await self.session.execute(stmt)
        inserted = sum(1 for r in rows if r.identity not in existing)
        return inserted, len(rows) - inserted

    async def remove_pending_not_in(
        self, account_id: uuid.UUID, window_from: dt.date, window_to: dt.date, keep: Sequence[str]
    ) -> int:
        """Delete the account's pending rows of the window whose identity the bank no longer returned."""
        stmt = delete(ImportedTransaction).where(
            ImportedTransaction.account_id == account_id,
            ImportedTransaction.booking_status == "pending",
            ImportedTransaction.booking_date >= window_from,
            ImportedTransaction.booking_date <= window_to,
        )
        if keep:
            stmt = stmt.where(ImportedTransaction.identity.not_in(list(keep)))
        result = await self.session.execute(stmt)
        return int(getattr(result, "rowcount", 0) or 0)

    # ------------------------------------------------------------------ counts

    async def unbooked_count(self, account_id: uuid.UUID) -> int:
        """The account's booked rows still to book (what the sync's events report)."""
        stmt = select(func.count()).where(
            ImportedTransaction.account_id == account_id,
            ImportedTransaction.booking_status == "booked",
            ImportedTransaction.status == TransactionStatus.unbooked,
        )
        return int((await self.session.execute(stmt)).scalar_one())

    async def unbooked_counts(
        self, company: Principal | uuid.UUID, account_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, int]:
        """``{account_id: unbooked_count}`` in one grouped query: booked rows still to book (pending
        rows cannot be booked yet), the same count as the to-do and the sync events."""
        if not account_ids:
            return {}
        base: Any = select(ImportedTransaction.account_id, func.count())
        stmt = (
            scoped(base, ImportedTransaction, company)
            .where(
                ImportedTransaction.account_id.in_(list(account_ids)),
                ImportedTransaction.booking_status == "booked",
                ImportedTransaction.status == TransactionStatus.unbooked,
            )
            .group_by(ImportedTransaction.account_id)
        )
        rows = (await self.session.execute(stmt)).all()
        return {row[0]: int(row[1]) for row in rows}

    async def unbooked_per_account(self, company_id: uuid.UUID) -> list[tuple[BankAccount, int]]:
        """Accounts (not disconnected) with unbooked booked rows, and their count."""
        counts = (
            scoped(
                select(ImportedTransaction.account_id, func.count().label("n")),  # type: ignore[arg-type]
                ImportedTransaction,
                company_id,
            )
            .where(
                ImportedTransaction.booking_status == "booked",
                ImportedTransaction.status == TransactionStatus.unbooked,
            )
            .group_by(ImportedTransaction.account_id)
            .subquery()
        )
        stmt = (
            scoped(select(BankAccount, counts.c.n), BankAccount, company_id)
            .join(counts, counts.c.account_id == BankAccount.id)
            .where(BankAccount.status != AccountStatus.disconnected)
            .order_by(BankAccount.created_at, BankAccount.id)
        )
        return [(row[0], int(row[1])) for row in (await self.session.execute(stmt)).all()]

    # ------------------------------------------------------------------ the inbox's reads

    async def page_rows(
        self,
        company_id: uuid.UUID,
        by: TransactionFilter,
        after: tuple[dt.date, uuid.UUID] | None,
        limit: int,
    ) -> Sequence[Any]:
        """The list endpoint's page as plain rows (no ORM entities): the columns of
        :data:`PAGE_FIELDS` of the company's rows matching ``by`` (as :meth:`filtered`), with the
        account's ``ledger_account`` joined in the same statement. Newest first, keyset on
        (booking_date, id); the filter uses ``ix_bank_transaction_inbox`` (company, account, status,
        booking_date, id). The statement of each filter shape is built once (:func:`page_statement`)."""
        params: dict[str, Any] = {"company_id": company_id, "limit": limit}
        if by.account_id is not None:
            params["account_id"] = by.account_id
        if by.status is not None:
            params["status"] = str(by.status)
        if by.booking_status is not None:
            params["booking_status"] = by.booking_status
        if by.date_from is not None:
            params["date_from"] = by.date_from
        if by.date_to is not None:
            params["date_to"] = by.date_to
        if by.q:
            params["pattern"] = "%" + by.q.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"
        if after is not None:
            params["after_day"], params["after_id"] = after
        return await page_statement(PageShape.of(by, after is not None)).rows(self.session, params)

    async def get_many_for_update(
        self, company_id: uuid.UUID, ids: Sequence[uuid.UUID]
    ) -> Sequence[ImportedTransaction]:
        stmt = scoped(select(ImportedTransaction), ImportedTransaction, company_id).where(
            ImportedTransaction.id.in_(list(ids))
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

    # ------------------------------------------------------------------ the suggestions' reads and claims

    async def with_ledger(
        self, company_id: uuid.UUID, ids: Sequence[uuid.UUID], *, for_update: bool = False
    ) -> list[tuple[ImportedTransaction, str | None]]:
        """The rows with their account's ledger account; ``for_update`` locks the rows (not the
        accounts) so that two bookings of one row take turns."""
        base: Select[Any] = select(ImportedTransaction, BankAccount.ledger_account)  # type: ignore[assignment]
        stmt = (
            scoped(base, ImportedTransaction, company_id)
            .outerjoin(BankAccount, BankAccount.id == ImportedTransaction.account_id)
            .where(ImportedTransaction.id.in_(list(ids)))
        )
        if for_update:
            stmt = stmt.with_for_update(of=ImportedTransaction)
        return [(row[0], row[1]) for row in (await self.session.execute(stmt)).all()]

    async def claim_booking(self, company_id: uuid.UUID, transaction_id: uuid.UUID) -> bool:
        """Mark a booked-status row booked now, atomically: True for the one request that changed it.
        A conditional UPDATE is the claim on PostgreSQL (a second one waits for the row and then
        finds it booked) and on SQLite (writers take turns), so open items are paid once."""
        stmt = (
            update(ImportedTransaction)
            .where(
                ImportedTransaction.company_id == company_id,
                ImportedTransaction.id == transaction_id,
                ImportedTransaction.booking_status == "booked",
                ImportedTransaction.status != TransactionStatus.booked,
            )
            .values(status=TransactionStatus.booked, status_changed_at=utcnow())
            .execution_options(synchronize_session=False)
        )
        result: Any = await self.session.execute(stmt)
        return bool(result.rowcount)

    async def carrying(
        self, company_id: uuid.UUID, account_id: uuid.UUID, amount: Decimal, day: dt.date, slack_days: int
    ) -> Sequence[ImportedTransaction]:
        """The account's rows of this amount booked within ``slack_days`` of ``day``, locked (a BgMax
        deposit's candidates: two files paying the same row take turns, and the second sees the
        first's parts)."""
        stmt = scoped(select(ImportedTransaction), ImportedTransaction, company_id).where(
            ImportedTransaction.account_id == account_id,
            ImportedTransaction.amount == amount,
            ImportedTransaction.booking_date.between(
                day - dt.timedelta(days=slack_days), day + dt.timedelta(days=slack_days)
            ),
        )
        return await self.all(
            stmt.order_by(ImportedTransaction.booking_date, ImportedTransaction.id).with_for_update()
        )
