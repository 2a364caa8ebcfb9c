"""Open items, booking rules, suggestions and booking feedback."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.errors import Unprocessable
from ledgerlink.matching import engine
from ledgerlink.matching.errors import (
    BookingRuleNotFound,
    OpenItemNotFound,
    TransactionNotFound,
    UnknownOpenItems,
)
from ledgerlink.matching.references import history_token
from ledgerlink.matching.repository import (
    BookingMemoryRepository,
    BookingRuleRepository,
    LumpSumRepository,
    OpenItemRepository,
    TransactionLookup,
)
from ledgerlink.matching.schemas import (
    BookingFeedback,
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


def part_read(part: TransactionPart) -> dict[str, Any]:
    return {
        "amount": format(part.amount, "f"),
        "reference": part.reference,
        "ocr_valid": part.ocr_valid,
        "payer": part.payer,
        "payer_org_number": part.payer_org_number,
    }


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
        found = await TransactionLookup(session).with_ledger(company_id, [transaction_id])
        if not found:
            raise TransactionNotFound(f"no transaction {transaction_id}")
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
        window_days: int = engine.DATE_WINDOW_DAYS,
    ) -> None:
        """Give each listed row (JSON values) its ``parts`` and, when asked, its best ``suggestion``."""
        ids = [uuid.UUID(i["id"]) for i in items]
        parts = await LumpSumRepository(session).parts_of(company_id, ids)
        best: dict[uuid.UUID, list[dict[str, Any]]] = {}
        if suggestion and ids:
            rows = await TransactionLookup(session).with_ledger(company_id, ids)
            best = await self._suggest(session, company_id, rows, write=False, window_days=window_days)
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
        keys = {history_token(tx.counterparty or tx.description) for tx, _ in rows} - {""}
        memory: dict[tuple[str, str], list[engine.Memory]] = {}
        for m in await BookingMemoryRepository(session).for_keys(company_id, keys):
            lines = tuple((x["account"], Decimal(x["share"]), x.get("vat_code")) for x in m.lines)
            memory.setdefault((m.key, m.direction), []).append(engine.Memory(lines, m.booked_on))
        if not write:
            for e in seeded:
                lines = tuple((x["account"], Decimal(x["share"]), x.get("vat_code")) for x in e["lines"])
                memory.setdefault((e["key"], e["direction"]), []).append(engine.Memory(lines, e["booked_on"]))
        out: dict[uuid.UUID, list[dict[str, Any]]] = {}
        indexes: dict[str, engine.OpenItems] = {}
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
                    engine.Part(p.amount, p.reference, p.payer, p.payer_org_number)
                    for p in parts.get(tx.id, [])
                ],
            )
            items = indexes.get(tx.currency)
            if items is None:
                items = indexes[tx.currency] = engine.OpenItems(
                    engine.Item(
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
                    if r.currency == tx.currency
                )
            history = memory.get((history_token(tx.counterparty or tx.description), row.direction), [])
            out[tx.id] = engine.suggest(row, items, rules, history, window_days=window_days)
        return out

    # --- learning -------------------------------------------------------------------------------

    async def closing_history(self, session: AsyncSession, company_id: uuid.UUID) -> list[dict[str, Any]]:
        """History not yet stored from the vouchers of imported closings (Fortnox or SIE) that touch a
        19xx account: each voucher's counter accounts as shares of its bank amount, filed under the
        first word of its text."""
        repo = BookingMemoryRepository(session)
        entries = []
        for voucher in await repo.unseeded_closing_vouchers(company_id):
            bank = sum((a for acc, a in voucher["rows"] if acc.startswith("19")), ZERO)
            token = history_token(voucher["text"])
            if bank == 0 or not token:
                continue
            counter: dict[str, Decimal] = {}
            for account, amount in voucher["rows"]:
                if not account.startswith("19"):
                    counter[account] = counter.get(account, ZERO) - amount / bank
            if (
                not counter
                or any(s <= 0 for s in counter.values())
                or abs(sum(counter.values(), ZERO) - 1) > Decimal("0.001")
            ):
                continue
            entries.append(
                {
                    "key": token,
                    "direction": "in" if bank > 0 else "out",
                    "lines": [{"account": a, "share": str(round(s, 6))} for a, s in counter.items()],
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
        found = await TransactionLookup(session).with_ledger(company_id, [transaction_id], for_update=True)
        if not found:
            return  # the status change answers 404
        tx, ledger = found[0]
        if booking.open_item_external_ids:
            await self._pay(session, company_id, tx, booking.open_item_external_ids)
        token = history_token(tx.counterparty or tx.description)
        lines = self._memory_lines(tx, ledger, booking)
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
        if not await TransactionLookup(session).claim_booking(company_id, tx.id):
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

    @staticmethod
    def _memory_lines(
        tx: ImportedTransaction, ledger: str | None, booking: BookingFeedback
    ) -> list[dict[str, Any]]:
        total = abs(tx.amount)
        if total == 0:
            return []
        incoming = tx.amount >= 0
        shares: dict[str, tuple[Decimal, str | None]] = {}
        for line in booking.lines:
            if line.account == ledger or line.account.startswith("19"):
                continue
            net = Decimal(line.credit) - Decimal(line.debit)
            amount = net if incoming else -net
            before = shares.get(line.account, (ZERO, line.vat_code))
            shares[line.account] = (before[0] + amount, before[1] or line.vat_code)
        out = []
        for account, (amount, vat_code) in shares.items():
            if amount <= 0:
                continue
            entry: dict[str, Any] = {"account": account, "share": str(round(amount / total, 6))}
            if vat_code:
                entry["vat_code"] = vat_code
            out.append(entry)
        return out


matching = MatchingService()
