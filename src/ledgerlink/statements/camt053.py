"""camt.053 (ISO 20022 BkToCstmrStmt) reader: a pure function from bytes to a :class:`ParsedStatement`.

Why our own reader on ``defusedxml`` rather than a parser package: the PyPI camt readers are young or
self-described as naive, and we need only a dozen elements (Stmt/Acct, Bal OPBD/CLBD, Ntry with Amt@Ccy,
CdtDbtInd, Sts, BookgDt/ValDt, AcctSvcrRef, NtryDtls/TxDtls refs, RmtInf, RltdPties). Why ``defusedxml``
rather than lxml: it wraps the standard library's expat parser and refuses a DTD, entity declarations
and external references before anything is expanded, so an XML bomb or an external entity cannot cost
memory or reach the network; lxml would be a C dependency for no feature we use. Namespaces (camt.053
.001.02 to .001.08) are ignored: elements are matched by local name.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from decimal import Decimal, InvalidOperation
from xml.etree.ElementTree import Element, ParseError

import defusedxml.ElementTree as SafeET
from defusedxml import DefusedXmlException

from ledgerlink.statements.errors import StatementRefused, StatementUnreadable
from ledgerlink.statements.model import ParsedStatement, StatementBalance, StatementRow


def _local(tag: str) -> str:
    return tag.rsplit("}", 1)[-1]


def _child(el: Element | None, *path: str) -> Element | None:
    """The first descendant along ``path`` (local names), or None."""
    for name in path:
        if el is None:
            return None
        el = next((c for c in el if _local(c.tag) == name), None)
    return el


def _children(el: Element, name: str) -> list[Element]:
    return [c for c in el if _local(c.tag) == name]


def _text(el: Element | None, *path: str) -> str | None:
    found = _child(el, *path) if path else el
    if found is None or found.text is None:
        return None
    value = " ".join(found.text.split())
    return value or None


def _date(el: Element | None, where: str) -> dt.date | None:
    """A camt date group (``Dt`` or ``DtTm``) as a bank date."""
    if el is None:
        return None
    raw = _text(el, "Dt") or _text(el, "DtTm")
    if raw is None:
        return None
    try:
        return dt.date.fromisoformat(raw[:10])
    except ValueError:
        raise StatementUnreadable(f"{where}: {raw!r} is not a date", loc=["file", where]) from None


def _amount(el: Element | None, where: str) -> tuple[Decimal, str | None]:
    if el is None or not (el.text or "").strip():
        raise StatementUnreadable(f"{where}: the amount is missing", loc=["file", where])
    try:
        value = Decimal((el.text or "").strip())
    except InvalidOperation:
        raise StatementUnreadable(f"{where}: {el.text!r} is not an amount", loc=["file", where]) from None
    if not value.is_finite() or value < 0:
        raise StatementUnreadable(f"{where}: {el.text!r} is not an amount", loc=["file", where])
    return value, el.get("Ccy")


def _signed(value: Decimal, indicator: str | None, where: str) -> Decimal:
    if indicator == "CRDT":
        return value
    if indicator == "DBIT":
        return -value
    raise StatementUnreadable(
        f"{where}/CdtDbtInd: {indicator!r} is neither CRDT nor DBIT", loc=["file", where]
    )


def _load(data: bytes) -> Element:
    try:
        root: Element = SafeET.fromstring(data, forbid_dtd=True, forbid_entities=True, forbid_external=True)
    except DefusedXmlException as exc:
        raise StatementRefused(
            f"the XML declares a DTD, entities or external references, which a statement never needs ({type(exc).__name__})",
            loc=["file"],
        ) from None
    except ParseError as exc:
        line, column = exc.position
        raise StatementUnreadable(
            f"the XML is not well-formed at line {line}, column {column}", loc=["file", f"line {line}"]
        ) from None
    return root


def _balance(stmt: Element, code: str, where: str) -> StatementBalance | None:
    for i, bal in enumerate(_children(stmt, "Bal"), start=1):
        if _text(bal, "Tp", "CdOrPrtry", "Cd") != code:
            continue
        here = f"{where}/Bal[{i}]"
        value, _ = _amount(_child(bal, "Amt"), f"{here}/Amt")
        when = _date(_child(bal, "Dt"), f"{here}/Dt")
        if when is None:
            raise StatementUnreadable(f"{here}/Dt: the balance has no date", loc=["file", here])
        return StatementBalance(_signed(value, _text(bal, "CdtDbtInd"), here), when)
    return None


def _party(tx: Element | None, credit: bool) -> str | None:
    """The other side: the debtor of money in, the creditor of money out."""
    parties = _child(tx, "RltdPties")
    if parties is None:
        return None
    role = "Dbtr" if credit else "Cdtr"
    return _text(parties, role, "Nm") or _text(parties, role, "Pty", "Nm")


def _entry(entry: Element, where: str, default_ccy: str | None) -> StatementRow:
    value, ccy = _amount(_child(entry, "Amt"), f"{where}/Amt")
    amount = _signed(value, _text(entry, "CdtDbtInd"), where)
    status = _text(entry, "Sts") or _text(entry, "Sts", "Cd") or "BOOK"
    if status not in {"BOOK", "PDNG", "INFO"}:
        raise StatementUnreadable(
            f"{where}/Sts: {status!r} is not BOOK or PDNG", loc=["file", f"{where}/Sts"]
        )
    booking = _date(_child(entry, "BookgDt"), f"{where}/BookgDt")
    value_date = _date(_child(entry, "ValDt"), f"{where}/ValDt")
    if booking is None and value_date is None:
        raise StatementUnreadable(f"{where}/BookgDt: the entry has no date", loc=["file", f"{where}/BookgDt"])
    tx = _child(entry, "NtryDtls", "TxDtls")
    refs = _child(tx, "Refs")
    bank_ref = _text(entry, "AcctSvcrRef") or _text(refs, "AcctSvcrRef")
    reference = (
        _text(tx, "RmtInf", "Strd", "CdtrRefInf", "Ref")
        or _text(refs, "EndToEndId")
        or _text(refs, "InstrId")
    )
    if reference == "NOTPROVIDED":
        reference = None
    texts = [_text(u) for u in _children(_child(tx, "RmtInf") or Element("x"), "Ustrd")]
    text = " ".join(t for t in texts if t) or _text(entry, "AddtlNtryInf") or _text(tx, "AddtlTxInf")
    return StatementRow(
        booking_date=booking or value_date,  # type: ignore[arg-type]
        value_date=value_date,
        amount=amount,
        currency=(ccy or default_ccy or "").upper(),
        booked=status == "BOOK",
        bank_ref=bank_ref,
        text=text,
        counterparty=_party(tx, amount > 0),
        reference=reference,
    )


def parse_camt053(data: bytes) -> ParsedStatement:
    """Read one camt.053 document (the first statement in it; a file per account is what banks send)."""
    root = _load(data)
    report = _child(root, "BkToCstmrStmt") if _local(root.tag) == "Document" else root
    if report is None or _local(report.tag) != "BkToCstmrStmt":
        raise StatementUnreadable(
            "Document/BkToCstmrStmt: not a camt.053 statement", loc=["file", "Document"]
        )
    statements = _children(report, "Stmt")
    if not statements:
        raise StatementUnreadable("BkToCstmrStmt/Stmt: the file holds no statement", loc=["file", "Stmt"])
    stmt = statements[0]
    acct = _child(stmt, "Acct")
    currency = _text(acct, "Ccy")
    parsed = ParsedStatement(
        format="camt053",
        currency=currency.upper() if currency else None,
        iban=_text(acct, "Id", "IBAN"),
        opening=_balance(stmt, "OPBD", "Stmt"),
        closing=_balance(stmt, "CLBD", "Stmt"),
    )
    for i, entry in enumerate(_children(stmt, "Ntry"), start=1):
        row = _entry(entry, f"Stmt/Ntry[{i}]", parsed.currency)
        if not row.currency:
            raise StatementUnreadable(f"Stmt/Ntry[{i}]/Amt: no currency", loc=["file", f"Stmt/Ntry[{i}]/Amt"])
        parsed.rows.append(replace(row, line=i))
    return parsed
