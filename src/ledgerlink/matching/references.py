"""References in a bank row: OCR numbers, invoice numbers, org numbers, counterparty names.

Pure functions. An OCR reference ends in a Luhn (modulus 10) check digit; a payee may also require a
length digit, the second-to-last digit, equal to the total length modulo 10. An org number
(NNNNNN-NNNN) carries its own Luhn check digit over the ten digits.
"""

from __future__ import annotations

import re
import unicodedata
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
#: Payment words in folded text (:func:`fold`): not part of anyone's name.
_NAME_NOISE = re.compile(
    r"\b(?:bg|pg|bankgiro|plusgiro|ocr|swish|kortkop|kop|overforing|betalning|inbetalning|inbet|"
    r"utbetalning|faktura|fakt|fa|lev|leverantorsbetalning|autogiro|ag)\b"
)
#: Swedish legal forms in folded text, dropped from names ("Telia Sverige AB" = "Telia Sverige").
_LEGAL_FORM = re.compile(
    r"\b(?:ab|aktiebolag(?:et)?|hb|handelsbolag(?:et)?|kb|kommanditbolag(?:et)?|"
    r"ek for|ekonomisk forening|publ)\b"
)
_NOT_LETTERS = re.compile(r"[^a-z]+")
_WRITTEN_ORG = re.compile(r"(?<![\d-])\d{6}-\d{4}(?![\d-])")
_MONTHS = frozenset({
    "januari", "februari", "mars", "april", "maj", "juni", "juli", "augusti", "september", "oktober",
    "november", "december", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "okt", "oct",
    "nov", "dec", "may",
})  # fmt: skip
#: Words of a text's stem: the payee comes first in a bank text, the variable part after it.
STEM_WORDS = 3


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


def fold(text: str) -> str:
    """Case and diacritics folded: ``Kraftnät`` → ``kraftnat``, ``Müller`` → ``muller``."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def counterparty_key(name: str | None) -> str:
    """A name made comparable: case and diacritics folded; punctuation, digits, payment words and
    legal forms (AB, Aktiebolag, HB, KB, ek. för., publ…) dropped."""
    if not name:
        return ""
    text = _NAME_NOISE.sub(" ", _NOT_LETTERS.sub(" ", fold(name)))
    return " ".join(_LEGAL_FORM.sub(" ", text).split())[:200]


def written_org_number(*texts: str | None) -> str | None:
    """The first valid org number written as one (NNNNNN-NNNN, with the hyphen) in ``texts``: a bare
    run of ten digits is more often an OCR or account number, whose Luhn digit would pass as well."""
    for text in texts:
        for m in _WRITTEN_ORG.finditer(text or ""):
            if org_number_valid(m.group(0)):
                return m.group(0)
    return None


def text_stem(text: str | None) -> str:
    """The first words of a bank text made comparable, without month names: ``TELIA SVERIGE AB
    faktura mars 2026`` → ``telia sverige``."""
    words = [w for w in counterparty_key(text).split() if w not in _MONTHS]
    return " ".join(words[:STEM_WORDS])


def history_key(counterparty: str | None, description: str | None = None) -> str:
    """What a row's booking history is filed under: the best identity the row has. Its org number
    when the counterparty or text carries one (``org:556036-0793``); else its comparable counterparty
    name (:func:`counterparty_key`); else the stem of its text (:func:`text_stem`). "" when none."""
    org = written_org_number(counterparty, description)
    if org:
        return f"org:{org}"
    return counterparty_key(counterparty) or text_stem(description)


def names_match(a: str | None, b: str | None) -> bool:
    """Two counterparty names refer to the same party (one contains the other, after normalising)."""
    ka, kb = counterparty_key(a), counterparty_key(b)
    if not ka or not kb:
        return False
    return ka == kb or (min(len(ka), len(kb)) >= 4 and (ka in kb or kb in ka))
