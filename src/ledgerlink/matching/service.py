"""Open items, booking rules, suggestions and booking feedback."""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.errors import Unprocessable
from ledgerlink.inbox.errors import TransactionsNotFound
from ledgerlink.inbox.repository import TransactionRepository
from ledgerlink.inbox.schemas import BookingFeedback
from ledgerlink.matching import engine, history, invoices
from ledgerlink.matching.errors import (
    BookingRuleNotFound,
    OpenItemNotFound,
    UnknownOpenItems,
)
from ledgerlink.matching.references import history_key
from ledgerlink.matching.repository import (
    BookingMemoryRepository,
    BookingRuleRepository,
    LumpSumRepository,
    OpenItemRepository,
    PartRow,
)
from ledgerlink.matching.schemas import (
    OpenItemBatch,
    OpenItemBatchResult,
    OpenItemRead,
    RuleCreate,
    RulePatch,
    RuleRead,
)
from ledgerlink.models.bank import ImportedTransaction, TransactionStatus
from ledgerlink.models.matching import BookingRule, OpenItem, TransactionPart
from ledgerlink.money import round_to_ore
from ledgerlink.pagination import Keyset

OPEN_ITEMS_KEYSET = Keyset("open-items", str)

ZERO = Decimal("0.00")


def open_item_read(item: OpenItem) -> OpenItemRead:
    return OpenItemRead(
        external_id=item.external_id,
        kind=item.kind,
        number=item.number,
        ocr=item.ocr,
        counterparty_name=item.counterparty_name,
        counterparty_org_number=item.counterparty_org_number,
        currency=item.currency,
        amount_open=format(item.amount_open, "f"),
        invoice_date=item.invoice_date,
        due_date=item.due_date,
        credit_note=item.credit_note,
        status=item.status,
    )


def rule_read(rule: BookingRule) -> RuleRead:
    return RuleRead.model_validate(
        {
            "id": rule.id,
            "name": rule.name,
            "priority": rule.priority,
            "conditions": rule.conditions,
            "lines": rule.lines,
            "created_at": rule.created_at,
        }
    )


def part_read(part: PartRow | TransactionPart) -> dict[str, Any]:
    return {
        "amount": format(part.amount, "f"),
        "reference": part.reference,
        "ocr_valid": part.ocr_valid,
        "payer": part.payer,
        "payer_org_number": part.payer_org_number,
    }


def _index(open_rows: Iterable[Any]) -> invoices.OpenItems:
    """The matching candidates indexed, from :meth:`OpenItemRepository.open_items` rows."""
    return invoices.OpenItems(
        invoices.Item(
            r.external_id,
            r.kind,
            r.number,
            r.ocr,
            r.counterparty_name,
            r.counterparty_org_number,
            r.amount_open,
            r.due_date,
            r.credit_note,
        )
        for r in open_rows
    )


class MatchingService:
    # --- open items -----------------------------------------------------------------------------

    async def upsert_open_items(
        self, session: AsyncSession, company_id: uuid.UUID, batch: OpenItemBatch
    ) -> OpenItemBatchResult:
        rows = []
        closed = 0
        for item in batch.items:
            amount = round_to_ore(item.amount_open)
            closed += amount == 0
            rows.append(
                {
                    "external_id": item.external_id,
                    "kind": item.kind,
                    "number": item.number,
                    "ocr": item.ocr,
                    "counterparty_name": item.counterparty_name,
                    "counterparty_org_number": item.counterparty_org_number,
                    "currency": item.currency,
                    "amount_open": amount,
                    "invoice_date": item.invoice_date,
                    "due_date": item.due_date,
                    "status": "closed" if amount == 0 else "open",
                    "credit_note": item.credit_note,
                }
            )
        await OpenItemRepository(session).upsert(company_id, rows)
        return OpenItemBatchResult(upserted=len(rows) - closed, closed=closed)

    async def list_open_items(
        self,
        session: AsyncSession,
        company_id: uuid.UUID,
        *,
        kind: str | None,
        status: str | None,
        limit: int,
        cursor: str | None,
    ) -> tuple[list[OpenItemRead], str | None]:
        values = OPEN_ITEMS_KEYSET.decode(cursor)
        after: str | None = values[0] if values else None
        items = list(
            await OpenItemRepository(session).page(
                company_id, kind=kind, status=status, after=after, limit=limit + 1
            )
        )
        next_cursor = None
        if len(items) > limit:
            items = items[:limit]
            next_cursor = OPEN_ITEMS_KEYSET.encode(items[-1].external_id)
        return [open_item_read(i) for i in items], next_cursor

    async def delete_open_item(self, session: AsyncSession, company_id: uuid.UUID, external_id: str) -> None:
        if not await OpenItemRepository(session).delete_by_external_id(company_id, external_id):
            raise OpenItemNotFound(f"no open item with external_id {external_id}")

    # --- booking rules --------------------------------------------------------------------------

    async def create_rule(self, session: AsyncSession, company_id: uuid.UUID, data: RuleCreate) -> RuleRead:
        rule = BookingRule(
            id=uuid.uuid4(),
            company_id=company_id,
            name=data.name,
            priority=data.priority,
            conditions=data.conditions.model_dump(mode="json", exclude_none=True),
            lines=[line.model_dump(exclude_none=True) for line in data.lines],
        )
        await BookingRuleRepository(session).add(rule)
        await session.refresh(rule)
        return rule_read(rule)

    async def list_rules(self, session: AsyncSession, company_id: uuid.UUID) -> list[RuleRead]:
        return [rule_read(r) for r in await BookingRuleRepository(session).list_for(company_id)]

    async def _rule(self, session: AsyncSession, company_id: uuid.UUID, rule_id: uuid.UUID) -> BookingRule:
        rule = await BookingRuleRepository(session).get_scoped(company_id, rule_id)
        if rule is None:
            raise BookingRuleNotFound(f"no booking rule {rule_id}")
        return rule

    async def get_rule(self, session: AsyncSession, company_id: uuid.UUID, rule_id: uuid.UUID) -> RuleRead:
        return rule_read(await self._rule(session, company_id, rule_id))

    async def patch_rule(
        self, session: AsyncSession, company_id: uuid.UUID, rule_id: uuid.UUID, data: RulePatch
    ) -> RuleRead:
        rule = await self._rule(session, company_id, rule_id)
        if data.name is not None:
            rule.name = data.name
        if data.priority is not None:
            rule.priority = data.priority
        if data.conditions is not None:
            rule.conditions = data.conditions.model_dump(mode="json", exclude_none=True)
        if data.lines is not None:
            rule.lines = [line.model_dump(exclude_none=True) for line in data.lines]
        await session.flush()
        await session.refresh(rule)
        return rule_read(rule)

    async def delete_rule(self, session: AsyncSession, company_id: uuid.UUID, rule_id: uuid.UUID) -> None:
        await BookingRuleRepository(session).delete(await self._rule(session, company_id, rule_id))

    # --- suggestions ----------------------------------------------------------------------------

    async def suggestions(
        self, session: AsyncSession, company_id: uuid.UUID, transaction_id: uuid.UUID, *, window_days: int
    ) -> list[dict[str, Any]]:
        found = await TransactionRepository(session).with_ledger(company_id, [transaction_id])
        if not found:
            raise TransactionsNotFound(f"no transaction {transaction_id}")
        return (await self._suggest(session, company_id, found, write=True, window_days=window_days))[
            transaction_id
        ]

    async def annotate(
        self,
        session: AsyncSession,
        company_id: uuid.UUID,
        items: list[dict[str, Any]],
        *,
        suggestion: bool,
        window_days: int = invoices.DATE_WINDOW_DAYS,
        ids: Sequence[uuid.UUID] | None = None,
    ) -> None:
        """Give each listed row (JSON values) its ``parts`` and, when asked, its best ``suggestion``.
        ``ids``: the rows' ids as UUIDs, in the order of ``items``, when the caller has them."""
        if ids is None:
            ids = [uuid.UUID(i["id"]) for i in items]
        parts = await LumpSumRepository(session).parts_of(company_id, ids)
        best: dict[uuid.UUID, list[dict[str, Any]]] = {}
        if suggestion and ids:
            rows = await TransactionRepository(session).with_ledger(company_id, ids)
            best = await self._suggest(session, company_id, rows, write=False, window_days=window_days)
        if not parts and not best:  # the usual page: no BgMax parts, no suggestions asked for
            for item in items:
                item["parts"] = []
                item["suggestion"] = None
            return
        for item, id_ in zip(items, ids, strict=True):
            item["parts"] = [part_read(p) for p in parts.get(id_, [])]
            ranked = best.get(id_) or []
            item["suggestion"] = ranked[0] if ranked else None

    async def _suggest(
        self,
        session: AsyncSession,
        company_id: uuid.UUID,
        rows: Sequence[tuple[ImportedTransaction, str | None]],
        *,
        write: bool,
        window_days: int,
    ) -> dict[uuid.UUID, list[dict[str, Any]]]:
        """``write=False`` on read-only sessions: closing history not stored yet is used, not stored."""
        seeded = await self.closing_history(session, company_id)
        if write:
            await BookingMemoryRepository(session).put(company_id, seeded)
        ids = [tx.id for tx, _ in rows]
        parts = await LumpSumRepository(session).parts_of(company_id, ids)
        open_rows = await OpenItemRepository(session).open_items(company_id)
        rules = [
            engine.Rule(r.name, r.priority, r.conditions, r.lines)
            for r in await BookingRuleRepository(session).list_for(company_id)
        ]
        keys = {history_key(tx.counterparty, tx.description) for tx, _ in rows} - {""}
        memory: dict[tuple[str, str], list[engine.Memory]] = {}
        stored = [
            (m.key, m.direction, m.lines, m.booked_on)
            for m in await BookingMemoryRepository(session).for_keys(company_id, keys)
        ]
        if not write:  # not stored yet: used as they are
            stored += [(e["key"], e["direction"], e["lines"], e["booked_on"]) for e in seeded]
        for key, direction, lines, booked_on in stored:
            memory.setdefault((key, direction), []).append(engine.Memory(history.shares_of(lines), booked_on))
        out: dict[uuid.UUID, list[dict[str, Any]]] = {}
        indexes: dict[str, invoices.OpenItems] = {}
        for tx, ledger in rows:
            row = engine.Row(
                amount=tx.amount,
                date=tx.booking_date,
                counterparty=tx.counterparty,
                description=tx.description,
                reference=tx.reference,
                bank_account=ledger,
                bank_account_id=str(tx.account_id),
                parts=[
                    invoices.Part(p.amount, p.reference, p.payer, p.payer_org_number)
                    for p in parts.get(tx.id, [])
                ],
            )
            if tx.currency not in indexes:
                indexes[tx.currency] = _index(r for r in open_rows if r.currency == tx.currency)
            past = memory.get((history_key(tx.counterparty, tx.description), row.direction), [])
            out[tx.id] = engine.suggest(row, indexes[tx.currency], rules, past, window_days=window_days)
        return out

    # --- learning -------------------------------------------------------------------------------

    async def closing_history(self, session: AsyncSession, company_id: uuid.UUID) -> list[dict[str, Any]]:
        """History not yet stored from the vouchers of imported closings (Fortnox or SIE) that touch a
        19xx account: each voucher's counter accounts as shares of its bank amount, filed under its
        text's :func:`history_key` (an org number written in it, else the stem of the text)."""
        entries = []
        for voucher in await BookingMemoryRepository(session).unseeded_closing_vouchers(company_id):
            key = history_key(None, voucher["text"])
            learned = history.from_voucher(voucher["rows"])
            if not key or learned is None:
                continue
            direction, lines = learned
            entries.append(
                {
                    "key": key,
                    "direction": direction,
                    "lines": lines,
                    "source": "closing",
                    "source_ref": voucher["ref"],
                    "booked_on": voucher["date"],
                }
            )
        return entries

    async def record_booking(
        self,
        session: AsyncSession,
        company_id: uuid.UUID,
        transaction_id: uuid.UUID,
        status: str,
        booking: BookingFeedback | None,
    ) -> None:
        """Booking feedback from ``PATCH /v1/transactions/{id}``: remember how the row was booked and
        reduce the open items it paid (once: a row already booked does not pay them again)."""
        if booking is None:
            return
        if status != TransactionStatus.booked.value:
            raise Unprocessable("booking is only accepted with status booked", loc=["body", "booking"])
        found = await TransactionRepository(session).with_ledger(
            company_id, [transaction_id], for_update=True
        )
        if not found:
            return  # the status change answers 404
        tx, ledger = found[0]
        if booking.open_item_external_ids:
            await self._pay(session, company_id, tx, booking.open_item_external_ids)
        token = history_key(tx.counterparty, tx.description)
        lines = history.from_booking(
            tx.amount,
            ledger,
            ((x.account, Decimal(x.debit), Decimal(x.credit), x.vat_code) for x in booking.lines),
        )
        if token and lines:
            await BookingMemoryRepository(session).put(
                company_id,
                [
                    {
                        "key": token,
                        "direction": "in" if tx.amount >= 0 else "out",
                        "lines": lines,
                        "source": "feedback",
                        "source_ref": f"transaction:{tx.id}",
                        "booked_on": tx.booking_date,
                    }
                ],
            )

    async def _pay(
        self, session: AsyncSession, company_id: uuid.UUID, tx: ImportedTransaction, external_ids: list[str]
    ) -> None:
        wanted = list(dict.fromkeys(external_ids))
        items = {
            i.external_id: i
            for i in await OpenItemRepository(session).by_external_ids(company_id, wanted, for_update=True)
        }
        missing = [x for x in wanted if x not in items]
        if missing:
            raise UnknownOpenItems(
                f"unknown open items: {', '.join(missing)}",
                loc=["body", "booking", "open_item_external_ids"],
                extra={"external_ids": missing},
            )
        if not await TransactionRepository(session).claim_booking(company_id, tx.id):
            return  # booked already (or pending: the status change answers 422): paid once only
        left = abs(tx.amount)
        ordered = sorted((items[x] for x in wanted), key=lambda i: not i.credit_note)  # credit notes first
        for item in ordered:
            if item.credit_note:
                left += item.amount_open
                paid = item.amount_open
            else:
                paid = min(left, item.amount_open)
                left -= paid
            item.amount_open -= paid
            if item.amount_open == 0:
                item.status = "closed"
        await session.flush()


matching = MatchingService()
