"""References in a bank row: OCR numbers, invoice numbers, org numbers, counterparty names.

Pure functions. An OCR reference ends in a Luhn (modulus 10) check digit; a payee may also require a
length digit, the second-to-last digit, equal to the total length modulo 10. An org number
(NNNNNN-NNNN) carries its own Luhn check digit over the ten digits.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

OCR_MIN = 2
OCR_MAX = 25


def luhn_digit(digits: str) -> int:
    """The modulus-10 check digit that makes ``digits`` + it pass the Luhn check."""
    total = 0
    for i, ch in enumerate(reversed(digits)):
        n = int(ch)
        if i % 2 == 0:  # doubled: the rightmost digit before the check digit
            n *= 2
            if n > 9:
                n -= 9
        total += n
    return (10 - total % 10) % 10


def luhn_ok(number: str) -> bool:
    return number.isdigit() and len(number) >= 2 and luhn_digit(number[:-1]) == int(number[-1])


def ocr_valid(number: str, *, length_digit: bool = False) -> bool:
    """An OCR reference: 2–25 digits with a valid check digit (and, if asked, a valid length digit)."""
    if not number.isdigit() or not OCR_MIN <= len(number) <= OCR_MAX or not luhn_ok(number):
        return False
    return not length_digit or (len(number) >= 3 and int(number[-2]) == len(number) % 10)


def make_ocr(base: str, *, length_digit: bool = False) -> str:
    """``base`` with a check digit (and a length digit before it when asked)."""
    if length_digit:
        base = base + str((len(base) + 2) % 10)
    return base + str(luhn_digit(base))


def org_number_valid(number: str) -> bool:
    digits = number.replace("-", "")
    return len(digits) == 10 and digits.isdigit() and luhn_ok(digits)


def normalize_org_number(number: str) -> str:
    digits = number.replace("-", "")
    return f"{digits[:6]}-{digits[6:]}"


_ORG = re.compile(r"(?<!\d)(\d{6})-?(\d{4})(?!\d)")
_DIGIT_RUN = re.compile(r"(?<![\d])\d(?:[\d ]*\d)?(?![\d])")
_INVOICE = re.compile(
    r"(?i)\b(?:faktura(?:nr|nummer)?|fakt|inv(?:oice)?|fnr|nr)\.?\s*[:#]?\s*([A-Z0-9-]{1,20})"
)
_NAME_NOISE = re.compile(
    r"(?i)\b(?:bg|pg|bankgiro|plusgiro|ocr|swish|kortköp|köp|överföring|betalning|inbetalning|inbet|"
    r"utbetalning|faktura|fakt|fa|lev|leverantörsbetalning|autogiro|ag)\b"
)


@dataclass(frozen=True)
class References:
    """What a row's texts say: valid OCR numbers, other digit runs, invoice numbers, org numbers, a name."""

    ocr: list[str] = field(default_factory=list)
    digits: list[str] = field(default_factory=list)
    invoice_numbers: list[str] = field(default_factory=list)
    org_numbers: list[str] = field(default_factory=list)
    name: str | None = None


def extract(*texts: str | None) -> References:
    ocr: list[str] = []
    digits: list[str] = []
    invoices: list[str] = []
    orgs: list[str] = []
    for text in texts:
        if not text:
            continue
        for m in _ORG.finditer(text):
            candidate = m.group(1) + m.group(2)
            if org_number_valid(candidate):
                orgs.append(normalize_org_number(candidate))
        for m in _INVOICE.finditer(text):
            invoices.append(m.group(1).upper())
        for m in _DIGIT_RUN.finditer(text):
            run = m.group(0).replace(" ", "")
            if len(run) > OCR_MAX:
                continue
            (ocr if ocr_valid(run) else digits).append(run)
    return References(
        ocr=list(dict.fromkeys(ocr)),
        digits=list(dict.fromkeys(digits)),
        invoice_numbers=list(dict.fromkeys(invoices)),
        org_numbers=list(dict.fromkeys(orgs)),
        name=counterparty_key(texts[0]) if texts and texts[0] else None,
    )


def counterparty_key(name: str | None) -> str:
    """A name made comparable: lower case, legal forms, payment words and digits removed."""
    if not name:
        return ""
    text = _NAME_NOISE.sub(" ", name.lower())
    text = re.sub(r"\b(?:ab|aktiebolag|hb|kb|ek för|publ)\b", " ", text)
    text = re.sub(r"[^a-zåäöéü ]+", " ", text)
    return " ".join(text.split())[:200]


def history_token(name: str | None) -> str:
    """The word a counterparty's history is filed under: the first word of its comparable name."""
    key = counterparty_key(name)
    return key.split(" ", 1)[0] if key else ""


def names_match(a: str | None, b: str | None) -> bool:
    """Two counterparty names refer to the same party (one contains the other, after normalising)."""
    ka, kb = counterparty_key(a), counterparty_key(b)
    if not ka or not kb:
        return False
    return ka == kb or (min(len(ka), len(kb)) >= 4 and (ka in kb or kb in ka))
