"""SQL of open items, booking rules, booking memory and BgMax lump sums (the bank rows themselves are
read and claimed through the inbox's ``TransactionRepository``, the one owner of ``bank_transaction``)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from functools import lru_cache
from typing import Any, NamedTuple

from sqlalchemy import Select, Uuid, any_, bindparam, delete, exists, select
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ledgerlink.db.base import utcnow
from ledgerlink.db.prebuilt import Prebuilt
from ledgerlink.db.repository import RepositoryBase, scoped
from ledgerlink.models.closing import Closing, ClosingVoucher, ClosingVoucherRow
from ledgerlink.models.matching import BgmaxImport, BookingMemory, BookingRule, OpenItem, TransactionPart


def _insert(session: Any) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


class OpenItemRepository(RepositoryBase[OpenItem]):
    model = OpenItem

    async def upsert(self, company_id: uuid.UUID, rows: Sequence[dict[str, Any]]) -> None:
        """Insert or update by (company, external_id), atomically even when two batches race."""
        at = utcnow()
        values = [{"id": uuid.uuid4(), "company_id": company_id, "created_at": at, "modified_at": at, **r}
                  for r in rows]  # fmt: skip
        base = _insert(self.session)(OpenItem).values(values)
        fields = ("kind", "number", "ocr", "counterparty_name", "counterparty_org_number", "currency",
                  "amount_open", "invoice_date", "due_date", "status", "credit_note")  # fmt: skip
        stmt = base.on_conflict_do_update(
            index_elements=["company_id", "external_id"],
            set_={**{f: base.excluded[f] for f in fields}, "modified_at": at},
        )
        await self.session.execute(stmt)

    async def page(
        self, company_id: uuid.UUID, *, kind: str | None, status: str | None, after: str | None, limit: int
    ) -> Sequence[OpenItem]:
        stmt = scoped(select(OpenItem), OpenItem, company_id)
        if kind is not None:
            stmt = stmt.where(OpenItem.kind == kind)
        if status is not None:
            stmt = stmt.where(OpenItem.status == status)
        if after is not None:
            stmt = stmt.where(OpenItem.external_id > after)
        return await self.all(stmt.order_by(OpenItem.external_id).limit(limit))

    async def by_external_ids(
        self, company_id: uuid.UUID, external_ids: Sequence[str], *, for_update: bool = False
    ) -> Sequence[OpenItem]:
        stmt = scoped(select(OpenItem), OpenItem, company_id).where(
            OpenItem.external_id.in_(list(external_ids))
        )
        return await self.all(stmt.with_for_update() if for_update else stmt)

    async def delete_by_external_id(self, company_id: uuid.UUID, external_id: str) -> bool:
        stmt = delete(OpenItem).where(OpenItem.company_id == company_id, OpenItem.external_id == external_id)
        result: Any = await self.session.execute(stmt)
        return bool(result.rowcount)

    async def open_items(self, company_id: uuid.UUID) -> Sequence[Any]:
        """The open items as plain rows (the matching candidates)."""
        base: Select[Any] = select(  # type: ignore[assignment]
            OpenItem.external_id, OpenItem.kind, OpenItem.number, OpenItem.ocr, OpenItem.counterparty_name,
            OpenItem.counterparty_org_number, OpenItem.amount_open, OpenItem.due_date, OpenItem.credit_note,
            OpenItem.currency,
        )  # fmt: skip
        stmt = scoped(base, OpenItem, company_id).where(OpenItem.status == "open")
        rows: Sequence[Any] = (await self.session.execute(stmt)).all()
        return rows


class BookingRuleRepository(RepositoryBase[BookingRule]):
    model = BookingRule

    async def list_for(self, company_id: uuid.UUID) -> Sequence[BookingRule]:
        stmt = self.scoped_select(company_id).order_by(
            BookingRule.priority, BookingRule.created_at, BookingRule.id
        )
        return await self.all(stmt)


class BookingMemoryRepository(RepositoryBase[BookingMemory]):
    model = BookingMemory

    async def for_keys(
        self, company_id: uuid.UUID, keys: set[str], limit: int = 2000
    ) -> Sequence[BookingMemory]:
        if not keys:
            return []
        stmt = (
            scoped(select(BookingMemory), BookingMemory, company_id)
            .where(BookingMemory.key.in_(keys))
            .order_by(BookingMemory.booked_on.desc())
            .limit(limit)
        )
        return await self.all(stmt)

    async def put(self, company_id: uuid.UUID, rows: Sequence[dict[str, Any]]) -> None:
        """Insert, or replace the one with the same ``source_ref`` (a row booked again)."""
        if not rows:
            return
        values = [{"id": uuid.uuid4(), "company_id": company_id, **r} for r in rows]
        base = _insert(self.session)(BookingMemory).values(values)
        stmt = base.on_conflict_do_update(
            index_elements=["company_id", "source_ref"],
            set_={f: base.excluded[f] for f in ("key", "direction", "lines", "booked_on", "source")},
        )
        await self.session.execute(stmt)

    async def unseeded_closing_vouchers(
        self, company_id: uuid.UUID, limit: int = 20000
    ) -> list[dict[str, Any]]:
        """Rows of the vouchers of each closing's current import that touch a 19xx account and are not
        in the memory yet: [{ref, date, text, rows: [(account, amount)]}]."""
        touches_bank = exists().where(
            ClosingVoucherRow.voucher_id == ClosingVoucher.id, ClosingVoucherRow.account.like("19%")
        )
        current = scoped(select(Closing.current_import_id), Closing, company_id).where(
            Closing.current_import_id.is_not(None)
        )
        vouchers: Select[Any] = select(ClosingVoucher.id, ClosingVoucher.date, ClosingVoucher.text)  # type: ignore[assignment]
        stmt = (
            scoped(vouchers, ClosingVoucher, company_id)
            .where(ClosingVoucher.import_id.in_(current.scalar_subquery()), touches_bank)
            .limit(limit)
        )
        found = {
            row[0]: {"ref": f"closing:{row[0]}", "date": row[1], "text": row[2], "rows": []}
            for row in (await self.session.execute(stmt)).all()
        }
        seeded_stmt: Select[Any] = select(BookingMemory.source_ref)
        seeded_stmt = scoped(seeded_stmt, BookingMemory, company_id).where(BookingMemory.source == "closing")
        seeded = set((await self.session.execute(seeded_stmt)).scalars().all())
        found = {k: v for k, v in found.items() if v["ref"] not in seeded}
        if not found:
            return []
        rows_stmt: Select[Any] = select(  # type: ignore[assignment]
            ClosingVoucherRow.voucher_id, ClosingVoucherRow.account, ClosingVoucherRow.amount
        )
        rows_stmt = scoped(rows_stmt, ClosingVoucherRow, company_id).where(
            ClosingVoucherRow.voucher_id.in_(list(found))
        )
        for voucher_id, account, amount in (await self.session.execute(rows_stmt)).all():
            found[voucher_id]["rows"].append((account, Decimal(amount)))
        return list(found.values())


class PartRow(NamedTuple):
    """One BgMax part of a bank row (what the inbox shows and matching reads)."""

    amount: Decimal
    reference: str | None
    ocr_valid: bool
    payer: str | None
    payer_org_number: str | None


@lru_cache(maxsize=1)
def parts_statement() -> Prebuilt:
    """The parts of a company's transactions, bind parameters ``company_id`` and ``ids`` (a list): an
    ``IN`` of the list through SQLAlchemy (SQLite), ``= ANY($2)`` of one array on PostgreSQL."""
    P = TransactionPart
    columns: tuple[Any, ...] = (
        P.transaction_id,
        P.amount,
        P.reference,
        P.ocr_valid,
        P.payer,
        P.payer_org_number,
    )
    base: Select[Any] = select(*columns).where(P.company_id == bindparam("company_id", type_=Uuid()))
    order = (P.transaction_id, P.seq)
    return Prebuilt(
        base.where(P.transaction_id.in_(bindparam("ids", expanding=True))).order_by(*order),
        postgresql=base.where(P.transaction_id == any_(bindparam("ids", type_=ARRAY(Uuid())))).order_by(
            *order
        ),
    )


class LumpSumRepository(RepositoryBase[BgmaxImport]):
    model = BgmaxImport

    async def find(
        self, company_id: uuid.UUID, account_id: uuid.UUID, content_hash: str
    ) -> BgmaxImport | None:
        stmt = self.scoped_select(company_id).where(
            BgmaxImport.account_id == account_id, BgmaxImport.content_hash == content_hash
        )
        return await self.one_or_none(stmt)

    async def transactions_with_parts(
        self, company_id: uuid.UUID, ids: Sequence[uuid.UUID]
    ) -> set[uuid.UUID]:
        if not ids:
            return set()
        stmt = scoped(select(TransactionPart.transaction_id), TransactionPart, company_id).where(
            TransactionPart.transaction_id.in_(list(ids))
        )
        return set((await self.session.execute(stmt)).scalars().all())

    async def add_parts(self, parts: Sequence[TransactionPart]) -> None:
        self.session.add_all(parts)
        await self.session.flush()

    async def parts_of(
        self, company_id: uuid.UUID, ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[PartRow]]:
        """The BgMax parts of the company's transactions ``ids`` (in their order), by transaction; one
        prebuilt statement (:func:`parts_statement`: the inbox list runs it on every page)."""
        if not ids:
            return {}
        out: dict[uuid.UUID, list[PartRow]] = {}
        for r in await parts_statement().rows(self.session, {"company_id": company_id, "ids": list(ids)}):
            out.setdefault(r[0], []).append(PartRow(r[1], r[2], r[3], r[4], r[5]))
        return out
