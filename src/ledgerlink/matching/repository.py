"""SQL of open items, booking rules, booking memory and BgMax lump sums."""

from __future__ import annotations

import datetime as dt
import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy import Select, delete, exists, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from ledgerlink.db.base import utcnow
from ledgerlink.db.repository import RepositoryBase, scoped
from ledgerlink.models.bank import BankAccount, ImportedTransaction, TransactionStatus
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


class TransactionLookup(RepositoryBase[ImportedTransaction]):
    """The bank rows the suggestions are for, with their account's mapped ledger account."""

    model = ImportedTransaction

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

    async def account(self, company_id: uuid.UUID, account_id: uuid.UUID) -> BankAccount | None:
        stmt = scoped(select(BankAccount), BankAccount, company_id).where(BankAccount.id == account_id)
        result: BankAccount | None = (await self.session.execute(stmt)).scalar_one_or_none()
        return result

    async def carrying(
        self, company_id: uuid.UUID, account_id: uuid.UUID, amount: Decimal, day: dt.date, slack_days: int
    ) -> Sequence[ImportedTransaction]:
        """Incoming rows of the account with this amount booked within ``slack_days`` of ``day``, locked."""
        stmt = scoped(select(ImportedTransaction), ImportedTransaction, company_id).where(
            ImportedTransaction.account_id == account_id,
            ImportedTransaction.amount == amount,
            ImportedTransaction.booking_date.between(
                day - dt.timedelta(days=slack_days), day + dt.timedelta(days=slack_days)
            ),
        )
        # locked: two files paying the same row take turns, and the second sees the first's parts
        return await self.all(
            stmt.order_by(ImportedTransaction.booking_date, ImportedTransaction.id).with_for_update()
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
    ) -> dict[uuid.UUID, list[TransactionPart]]:
        if not ids:
            return {}
        stmt = (
            scoped(select(TransactionPart), TransactionPart, company_id)
            .where(TransactionPart.transaction_id.in_(list(ids)))
            .order_by(TransactionPart.transaction_id, TransactionPart.seq)
        )
        out: dict[uuid.UUID, list[TransactionPart]] = {}
        for part in (await self.session.execute(stmt)).scalars().all():
            out.setdefault(part.transaction_id, []).append(part)
        return out
