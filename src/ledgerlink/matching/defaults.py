"""Swedish defaults (BAS accounts): what a row from these payees usually is, when neither an invoice,
a rule nor the company's history says otherwise."""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

from ledgerlink.matching.vouchers import Share


@dataclass(frozen=True)
class Default:
    pattern: re.Pattern[str]
    direction: str | None
    shares: tuple[Share, ...]
    reason: str
    confidence: float = 0.6


D = Decimal
DEFAULTS: tuple[Default, ...] = (
    Default(
        re.compile(r"(?i)intäktsränta|ränta.*skattekonto.*(?:intäkt)"),
        "in",
        (("8314", D(1), None),),
        "Interest on the tax account is tax-free income (8314)",
    ),
    Default(
        re.compile(r"(?i)kostnadsränta"),
        "out",
        (("8423", D(1), None),),
        "Interest cost on the tax account is not deductible (8423)",
    ),
    Default(
        re.compile(r"(?i)skatteverket|skattekonto"),
        None,
        (("1630", D(1), None),),
        "Payments to and from Skatteverket go through the tax account (1630)",
        0.65,
    ),
    Default(
        # a fee of the bank's: "avgift" alone is any fee (Nätavgift, parkeringsavgift, medlemsavgift)
        re.compile(
            r"(?i)bankavgift|kontoavgift|kortavgift|prisavisering|bank ?fee|"
            r"\bbank(?:en)?\b.*avgift|avgift.*\bbank(?:en)?\b"
        ),
        "out",
        (("6570", D(1), None),),
        "Bank fees go to 6570, without VAT",
    ),
    Default(
        re.compile(r"(?i)telia|telenor|tele2|\btre\b"),
        "out",
        (("6212", D("0.8"), "MP1"), ("2641", D("0.2"), None)),
        "Telephone bills go to 6212 with 25 % VAT",
    ),
    Default(
        re.compile(r"(?i)försäkring|if skadeförsäkring|folksam|länsförsäkringar"),
        "out",
        (("6310", D(1), None),),
        "Insurance premiums go to 6310, without VAT",
    ),
    Default(
        re.compile(r"(?i)\bswish\b"),
        "in",
        (("3001", D("0.8"), "MP1"), ("2611", D("0.2"), None)),
        "An incoming Swish payment without an invoice is a sale with 25 % VAT",
        0.4,
    ),
)


def default_for(text: str, direction: str) -> Default | None:
    """The first default whose payee pattern is in ``text`` and whose direction fits."""
    return next((d for d in DEFAULTS if d.direction in (None, direction) and d.pattern.search(text)), None)
