"""Bankgiro lump sums: a BgMax file read, each deposit paired with the bank row carrying it, and that
row given its parts (each matched like a payment of its own by the suggestions)."""

from __future__ import annotations

import hashlib
import uuid
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from ledgerlink.banks.errors import BankAccountNotFound
from ledgerlink.banks.repository import BankAccountRepository
from ledgerlink.bgmax import BgmaxError, read
from ledgerlink.inbox.repository import TransactionRepository
from ledgerlink.matching.errors import BgmaxConflict, InvalidBgmax
from ledgerlink.matching.references import normalize_org_number, ocr_valid, org_number_valid
from ledgerlink.matching.repository import LumpSumRepository
from ledgerlink.models.matching import BgmaxImport, TransactionPart

#: A deposit is booked by the bank on its payment date or a few banking days later.
PAIRING_DAYS = 4


async def import_bgmax(
    session: AsyncSession, company_id: uuid.UUID, account_id: uuid.UUID, content: bytes
) -> tuple[dict[str, Any], bool]:
    """The import as ``{id, deposits}`` and whether it is new (the same file again: the first result)."""
    lookup = TransactionRepository(session)
    account = await BankAccountRepository(session).get_scoped(company_id, account_id)
    if account is None:
        raise BankAccountNotFound(f"no bank account {account_id}")
    repo = LumpSumRepository(session)
    digest = hashlib.sha256(content).hexdigest()
    existing = await repo.find(company_id, account_id, digest)
    if existing is not None:
        return _out(existing), False
    try:
        deposits = list(read(content.splitlines(keepends=True)))
    except BgmaxError as exc:
        raise InvalidBgmax(str(exc), loc=["body", "file"], extra={"line": exc.line}) from exc
    if not deposits:
        raise InvalidBgmax("the file has no deposits", loc=["body", "file"])
    job = BgmaxImport(
        id=uuid.uuid4(), company_id=company_id, account_id=account_id, content_hash=digest, deposits=[]
    )
    parts: list[TransactionPart] = []
    taken: set[uuid.UUID] = set()
    out = []
    for deposit in deposits:
        candidates = [
            tx
            for tx in await lookup.carrying(
                company_id, account_id, deposit.amount, deposit.date, PAIRING_DAYS
            )
            if tx.id not in taken and tx.currency == deposit.currency
        ]
        with_parts = await repo.transactions_with_parts(company_id, [tx.id for tx in candidates])
        free = [tx for tx in candidates if tx.id not in with_parts and tx.booking_date >= deposit.date]
        row = min(free, key=lambda tx: (tx.booking_date - deposit.date).days, default=None)
        if row is not None:
            taken.add(row.id)
            for seq, payment in enumerate(deposit.payments, start=1):
                org = payment.payer_org_number
                parts.append(
                    TransactionPart(
                        transaction_id=row.id,
                        seq=seq,
                        company_id=company_id,
                        import_id=job.id,
                        amount=payment.amount,
                        reference=" ".join([payment.reference, *payment.extra_references]).strip() or None,
                        ocr_valid=ocr_valid(payment.reference.replace(" ", "")),
                        payer=payment.payer,
                        payer_org_number=normalize_org_number(org) if org and org_number_valid(org) else None,
                    )
                )
        out.append(
            {
                "date": deposit.date.isoformat(),
                "amount": format(deposit.amount, "f"),
                "payment_count": deposit.payment_count,
                "transaction_id": str(row.id) if row is not None else None,
            }
        )
    job.deposits = out
    try:
        async with session.begin_nested():
            session.add(job)
            await session.flush()
            await repo.add_parts(parts)
    except IntegrityError:  # the same file sent twice at once: the other request's result
        existing = await repo.find(company_id, account_id, digest)
        if existing is None:
            raise BgmaxConflict(
                "another BgMax upload for this account is being saved; send the file again"
            ) from None
        return _out(existing), False
    return _out(job), True


def _out(job: BgmaxImport) -> dict[str, Any]:
    return {"id": str(job.id), "deposits": job.deposits}
