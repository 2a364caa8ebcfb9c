"""Deterministic Swedish business and private bank data for the sandbox bank.

Everything here is a pure function of (account id, date[, as_of]): each day's events come from an RNG
seeded with a hash of the account id and the date, so any window returns the same rows every time and
a multi-night simulation sees yesterday's rows again today.

Event → row rules:

* An event happens on its *event date* ``d`` and books ``lag`` days later (card purchases 2 days,
  Bankgiro/Plusgiro 1 day, Swish, salaries, tax and fees the same day).
* On the bank's day ``as_of`` an event with ``d <= as_of < d + lag`` is **pending** (no bookingDate,
  ``valueDate = d``, a ``P...`` id); once ``d + lag <= as_of`` it is **booked** (``bookingDate =
  d + lag``, ``valueDate = d``) under a different ``T...`` id.
* A transactions window selects booked rows by booking date and pending rows by event date.
* Balances: ``balance_at(account, day)`` = the account's opening balance at :data:`EPOCH` plus every
  booked amount up to ``day``, so balances and transactions always agree.

Account ids are ``<kind>-<psu slug>`` with kind ``ftg`` (business, ORGA), ``priv`` (private, PRIV),
``spar`` (savings, PRIV) or ``gone`` (the vanishing account); the kind decides the kind of traffic.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import random
import re
from dataclasses import dataclass
from decimal import Decimal
from functools import lru_cache
from typing import Any, Literal

from ledgerlink.banks.adapters.base import BankTransaction, BookingStatus
from ledgerlink.money import round_to_ore

AccountKind = Literal["ftg", "priv", "spar", "gone"]
Usage = Literal["ORGA", "PRIV"]

EPOCH = dt.date(2025, 1, 1)
CURRENCY = "SEK"
MAX_LAG_DAYS = 2

KIND_USAGE: dict[str, Usage] = {"ftg": "ORGA", "priv": "PRIV", "spar": "PRIV", "gone": "PRIV"}
KIND_NAME = {"ftg": "Företagskonto", "priv": "Privatkonto", "spar": "Sparkonto", "gone": "Kortkonto"}
OPENING_BALANCE = {
    "ftg": Decimal("250000.00"),
    "priv": Decimal("18500.00"),
    "spar": Decimal("120000.00"),
    "gone": Decimal("3200.00"),
}

MERCHANTS = (
    "ICA Supermarket Hornstull",
    "Coop Konsum Södermalm",
    "Clas Ohlson Kungsgatan",
    "Biltema Sundbyberg",
    "Circle K Essingeleden",
    "Pressbyrån Centralen",
    "SJ AB",
    "Webhallen Sverige AB",
    "Staples Sweden",
    "Systembolaget Götgatan",
    "Apotek Hjärtat",
    "Espresso House Odenplan",
)
PEOPLE = (
    "Anna Lindqvist",
    "Erik Johansson",
    "Maria Andersson",
    "Karl Nilsson",
    "Sara Berg",
    "Johan Ek",
    "Elin Holm",
    "Oskar Sjöberg",
)
CUSTOMERS = ("Bygg & Montage i Norr AB", "Kaffekompaniet AB", "Nordlund Konsult HB", "Grönt Kontor AB")
SUPPLIERS = (
    ("Telia Sverige AB", "BG 5050-1055"),
    ("Vattenfall AB", "BG 5249-4014"),
    ("Ahlsell Sverige AB", "BG 5402-9722"),
    ("Fortnox AB", "BG 5151-7002"),
    ("Vasakronan Fastighets AB", "PG 47 11 00-2"),
    ("Folksam", "PG 95 77 00-1"),
)
BILLS = (
    ("Hyresgästföreningen Bostad AB", "BG 5832-7711", Decimal("8950.00")),
    ("Ellevio AB", "BG 5521-6610", Decimal("612.00")),
    ("Tele2 Sverige AB", "PG 4 02 31-8", Decimal("349.00")),
)
EMPLOYEES = ("Lina Forsberg", "Ahmed Karimi", "Petra Wallin")


@dataclass(frozen=True, slots=True)
class Event:
    """One money movement before the booked/pending decision."""

    account_id: str
    event_date: dt.date
    seq: int
    lag: int
    amount: Decimal
    counterparty: str
    text: str
    code: str
    ocr: str | None = None
    end_to_end: str | None = None

    @property
    def booking_date(self) -> dt.date:
        return self.event_date + dt.timedelta(days=self.lag)

    def ident(self, status: BookingStatus) -> str:
        raw = f"{self.account_id}|{self.event_date.isoformat()}|{self.seq}|{status.value}"
        prefix = "T" if status is BookingStatus.booked else "P"
        return prefix + hashlib.sha256(raw.encode()).hexdigest()[:20].upper()


@dataclass(frozen=True, slots=True)
class SandboxAccount:
    resource_id: str
    kind: AccountKind
    usage: Usage
    name: str
    iban: str
    bban: str
    currency: str = CURRENCY


# --------------------------------------------------------------------------- accounts


def psu_slug(psu_id: str) -> str:
    slug = re.sub(r"[^a-z0-9]+", "", psu_id.casefold())
    return slug[:32] or "demo"


def account_kind(account_id: str) -> AccountKind | None:
    kind = account_id.split("-", 1)[0]
    if kind in KIND_USAGE and "-" in account_id:
        return kind  # type: ignore[return-value]
    return None


def _digits(seed: str, n: int) -> str:
    number = int(hashlib.sha256(seed.encode()).hexdigest(), 16)
    return str(number)[-n:].rjust(n, "0")


def make_account(resource_id: str) -> SandboxAccount:
    kind = account_kind(resource_id)
    if kind is None:
        raise ValueError(f"not a sandbox account id: {resource_id!r}")
    bban = "9960" + _digits(resource_id, 10)  # 996x: a clearing range no real bank uses
    return SandboxAccount(
        resource_id=resource_id,
        kind=kind,
        usage=KIND_USAGE[kind],
        name=KIND_NAME[kind],
        iban=f"SE{_digits('iban' + resource_id, 2)}{bban}{_digits('x' + resource_id, 6)}",
        bban=bban,
    )


def accounts_for(psu_id: str, *, include_vanishing: bool = False) -> list[SandboxAccount]:
    """The PSU's accounts: one business (ORGA), one private and one savings account (PRIV)."""
    slug = psu_slug(psu_id)
    kinds: list[str] = ["ftg", "priv", "spar"] + (["gone"] if include_vanishing else [])
    return [make_account(f"{kind}-{slug}") for kind in kinds]


# --------------------------------------------------------------------------- events


def _rng(account_id: str, day: dt.date) -> random.Random:
    digest = hashlib.sha256(f"{account_id}|{day.isoformat()}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _money(rng: random.Random, low: int, high: int) -> Decimal:
    return round_to_ore(Decimal(rng.randint(low * 100, high * 100)) / 100)


def ocr_number(rng: random.Random, length: int = 10) -> str:
    """A Bankgirot OCR reference with a Luhn (modulus 10) check digit."""
    body = [rng.randint(0, 9) for _ in range(length - 1)]
    total = 0
    for i, digit in enumerate(reversed(body)):
        value = digit * 2 if i % 2 == 0 else digit
        total += value - 9 if value > 9 else value
    return "".join(map(str, body)) + str((10 - total % 10) % 10)


def _shift_to_weekday(day: dt.date, *, backwards: bool) -> dt.date:
    step = dt.timedelta(days=-1 if backwards else 1)
    while day.weekday() >= 5:
        day += step
    return day


def _monthly(day: dt.date, dom: int, *, backwards: bool = True) -> bool:
    """True when ``day`` is the bank day for day-of-month ``dom`` (moved off weekends)."""
    return _shift_to_weekday(day.replace(day=dom), backwards=backwards) == day


def _last_bank_day(day: dt.date) -> bool:
    next_month = (day.replace(day=28) + dt.timedelta(days=4)).replace(day=1)
    return _shift_to_weekday(next_month - dt.timedelta(days=1), backwards=True) == day


class _Builder:
    def __init__(self, account_id: str, day: dt.date) -> None:
        self.account_id = account_id
        self.day = day
        self.events: list[Event] = []

    def add(self, lag: int, amount: Decimal, counterparty: str, text: str, code: str, **kw: Any) -> None:
        self.events.append(
            Event(self.account_id, self.day, len(self.events), lag, amount, counterparty, text, code, **kw)
        )


def _cards(b: _Builder, rng: random.Random, weekday: bool, *, high: int) -> None:
    for _ in range(rng.randint(0, 3) if weekday else rng.randint(0, 1)):
        merchant = rng.choice(MERCHANTS)
        amount = -_money(rng, 25, high)
        b.add(2, amount, merchant, f"Kortköp {merchant}", "KORT")
        if rng.random() < 0.12:  # the same purchase twice: two genuine rows, identical content
            b.add(2, amount, merchant, f"Kortköp {merchant}", "KORT")


def _swish(b: _Builder, rng: random.Random, *, incoming: int, outgoing: int, high: int) -> None:
    for _ in range(rng.randint(0, incoming)):
        person = rng.choice(PEOPLE)
        b.add(0, _money(rng, 50, high), person, f"Swish från {person}", "SWISH", end_to_end=_swish_ref(rng))
    for _ in range(rng.randint(0, outgoing)):
        person = rng.choice(PEOPLE)
        b.add(
            0,
            -_money(rng, 50, high // 3),
            person,
            f"Swish till {person}",
            "SWISH",
            end_to_end=_swish_ref(rng),
        )


def _swish_ref(rng: random.Random) -> str:
    return "".join(rng.choice("0123456789ABCDEF") for _ in range(32))


def _business_day(b: _Builder, rng: random.Random) -> None:
    day = b.day
    weekday = day.weekday() < 5
    _cards(b, rng, weekday, high=2500)
    _swish(b, rng, incoming=3, outgoing=1, high=3000)
    if weekday:
        for _ in range(rng.choice((0, 0, 1, 1, 2))):
            customer = rng.choice(CUSTOMERS)
            b.add(1, _money(rng, 2000, 45000), customer, f"BG inbet {customer}", "BG", ocr=ocr_number(rng))
        for _ in range(rng.choice((0, 1, 1, 2))):
            supplier, giro = rng.choice(SUPPLIERS)
            code = "PG" if giro.startswith("PG") else "BG"
            b.add(1, -_money(rng, 500, 25000), supplier, f"{giro} {supplier}", code, ocr=ocr_number(rng))
    if _monthly(day, 25):
        for employee in EMPLOYEES:
            b.add(0, -_money(rng, 25000, 42000), employee, "Lön", "LON")
    if _monthly(day, 12, backwards=False):
        b.add(
            0,
            -_money(rng, 20000, 60000),
            "Skatteverket",
            "Skattekonto 16 5566778899",
            "SKV",
            ocr="1655667788990",
        )
    if _last_bank_day(day):
        b.add(0, Decimal("-125.00"), "Banken", "Företagspaket månadsavgift", "AVGIFT")


def _private_day(b: _Builder, rng: random.Random) -> None:
    day = b.day
    _cards(b, rng, day.weekday() < 5, high=900)
    _swish(b, rng, incoming=1, outgoing=2, high=600)
    if _monthly(day, 25):
        b.add(0, _money(rng, 28000, 38000), "Acme AB", "Lön Acme AB", "LON")
    if _monthly(day, 27):
        for payee, giro, amount in BILLS:
            code = "PG" if giro.startswith("PG") else "BG"
            b.add(1, -amount, payee, f"{giro} {payee}", code, ocr=ocr_number(rng))
    if _monthly(day, 26):
        b.add(0, Decimal("-3000.00"), "Eget sparkonto", "Överföring sparkonto", "OVF")
    if _last_bank_day(day):
        b.add(0, Decimal("-25.00"), "Banken", "Kontopaket månadsavgift", "AVGIFT")


def _savings_day(b: _Builder, rng: random.Random) -> None:
    day = b.day
    if _monthly(day, 26):
        b.add(0, Decimal("3000.00"), "Eget privatkonto", "Överföring från privatkonto", "OVF")
    if day.month in (3, 6, 9, 12) and _last_bank_day(day):
        b.add(0, _money(rng, 200, 900), "Banken", "Ränta", "RANTA")


@lru_cache(maxsize=65536)
def events_on(account_id: str, day: dt.date) -> tuple[Event, ...]:
    """Every event of the account that happens on ``day`` (pure, cached)."""
    kind = account_kind(account_id)
    b = _Builder(account_id, day)
    rng = _rng(account_id, day)
    if kind == "ftg":
        _business_day(b, rng)
    elif kind == "spar":
        _savings_day(b, rng)
    elif kind in ("priv", "gone"):
        _private_day(b, rng)
    return tuple(b.events)


def _days(start: dt.date, end: dt.date) -> list[dt.date]:
    return [start + dt.timedelta(days=i) for i in range((end - start).days + 1)]


# --------------------------------------------------------------------------- rows and ground truth


@dataclass(frozen=True, slots=True)
class SandboxRow:
    """A transaction as the sandbox bank serves it: the status and the Berlin Group JSON object."""

    status: BookingStatus
    event: Event

    def to_json(self, *, with_ids: bool = True) -> dict[str, Any]:
        e = self.event
        row: dict[str, Any] = {}
        if with_ids:
            row["transactionId"] = e.ident(self.status)
            if self.status is BookingStatus.booked:
                row["entryReference"] = f"{e.booking_date:%Y%m%d}{e.seq:04d}"
        if self.status is BookingStatus.booked:
            row["bookingDate"] = e.booking_date.isoformat()
        row["valueDate"] = e.event_date.isoformat()
        row["transactionAmount"] = {"amount": format(e.amount, "f"), "currency": CURRENCY}
        row["creditorName" if e.amount < 0 else "debtorName"] = e.counterparty
        row["remittanceInformationUnstructured"] = e.text
        if e.ocr:
            row["remittanceInformationStructured"] = {"reference": e.ocr, "referenceType": "OCR"}
        if e.end_to_end:
            row["endToEndId"] = e.end_to_end
        row["proprietaryBankTransactionCode"] = e.code
        return row

    def to_transaction(self, *, with_ids: bool = True) -> BankTransaction:
        """The normalised DTO a correct Berlin Group adapter produces for this row."""
        e = self.event
        booked = self.status is BookingStatus.booked
        return BankTransaction(
            booking_status=self.status,
            amount=e.amount,
            currency=CURRENCY,
            booking_date=e.booking_date if booked else e.event_date,
            value_date=e.event_date,
            provider_id=e.ident(self.status) if with_ids else None,
            counterparty=e.counterparty,
            description=e.text,
            reference=e.ocr or e.end_to_end,
        )


def sandbox_rows(account_id: str, date_from: dt.date, date_to: dt.date, as_of: dt.date) -> list[SandboxRow]:
    """The rows the sandbox bank serves for the window on day ``as_of``: booked rows by booking date
    (in date order), then pending rows by event date."""
    booked: list[SandboxRow] = []
    pending: list[SandboxRow] = []
    last = min(date_to, as_of)
    if last < date_from - dt.timedelta(days=MAX_LAG_DAYS):
        return []
    for day in _days(date_from - dt.timedelta(days=MAX_LAG_DAYS), last):
        for event in events_on(account_id, day):
            if event.booking_date <= as_of:
                if date_from <= event.booking_date <= date_to:
                    booked.append(SandboxRow(BookingStatus.booked, event))
            elif day >= date_from:
                pending.append(SandboxRow(BookingStatus.pending, event))
    booked.sort(key=lambda r: (r.event.booking_date, r.event.event_date, r.event.seq))
    return booked + pending


def sandbox_transactions(
    account_id: str, date_from: dt.date, date_to: dt.date, as_of: dt.date, *, with_ids: bool = True
) -> list[BankTransaction]:
    """Ground truth for tests: what the sandbox bank returns for the window, normalised, in order."""
    return [
        row.to_transaction(with_ids=with_ids) for row in sandbox_rows(account_id, date_from, date_to, as_of)
    ]


@lru_cache(maxsize=65536)
def booked_on(account_id: str, day: dt.date) -> Decimal:
    """Sum of the amounts that book on ``day``."""
    total = Decimal("0.00")
    for offset in range(MAX_LAG_DAYS + 1):
        for event in events_on(account_id, day - dt.timedelta(days=offset)):
            if event.booking_date == day:
                total += event.amount
    return total


def balance_at(account_id: str, day: dt.date) -> Decimal:
    """The booked balance at the end of ``day``."""
    kind = account_kind(account_id)
    opening = OPENING_BALANCE.get(kind or "", Decimal("0.00"))
    if day >= EPOCH:
        return opening + sum((booked_on(account_id, d) for d in _days(EPOCH, day)), Decimal("0.00"))
    before = EPOCH - dt.timedelta(days=1)
    if day >= before:
        return opening
    return opening - sum(
        (booked_on(account_id, d) for d in _days(day + dt.timedelta(days=1), before)), Decimal("0.00")
    )


def pending_total(account_id: str, as_of: dt.date) -> Decimal:
    rows = sandbox_rows(account_id, as_of - dt.timedelta(days=MAX_LAG_DAYS), as_of, as_of)
    return sum((r.event.amount for r in rows if r.status is BookingStatus.pending), Decimal("0.00"))
