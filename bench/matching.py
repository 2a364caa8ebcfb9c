"""Matching: suggestion quality on the sandbox company's year, and the engine's speed and memory.

No database: the pure engine (``ledgerlink.matching.engine.suggest``) is called on in-memory rows,
open items and history, as ``MatchingService._suggest`` calls it after loading them.

Quality. The sandbox business account of PSU ``demo`` for 2025 (``sandbox_rows``) with the open items
the sandbox pushes for it (``sandbox_invoices``): each OCR payment pays the open item made from it and
each Bankgiro deposit row (given its BgMax parts, as after the upload) pays the items of its parts, so
the right answer is known. The year is made harder where the sandbox is too easy (:func:`_harder`:
payments without a reference, partial payments, two invoices paid together, a second open invoice of
the same amount; :data:`SPLIT` counterparties booked two ways; :data:`NAMESAKES` sharing a first word),
each with its right answer. Other rows with a known answer: Skatteverket → 1630, the bank's fee → 6570.
The sandbox books nothing else, so for the recurring rest the bench fixes an answer key (``ANSWER_KEY``:
salaries 7210, each card merchant one cost account, incoming Swish 3001 + 2611); outgoing Swish to
people has no answer and is left out. Learning from the first N months: every booked row of months
1..N is fed back as the service's booking feedback does (history entry under ``history_key`` with
the counter accounts other than the bank account; the open items it paid closed). The rows scored are
the held-out months 10-12 for every N, so the curve compares like with like. Right = the best
(first) suggestion allocates exactly the right open items with the right remainder kind, or books
exactly the right counter accounts; "wrongly unambiguous" = the best suggestion is marked
``unambiguous`` and is not right (or is on a row where two invoices fit equally); "right and
unambiguous" = the rows that could be booked as suggested without a second look, so that a rule that
marks less as unambiguous shows what it costs. The curve is also scored with the first-word history key the service used before (:func:`first_word_key`).

Speed. 20,000 generated open items (1,000 customers and 1,000 suppliers, 10 each) and 10,000 rows
paying 10,000 of them: 60 % by OCR with the open amount, 15 % by OCR with a partial amount, 15 % with no
reference (amount + counterparty near the due date), 10 % card purchases that match nothing. The
engine (index built + ``suggest`` per row, no rules, no history) beside a bare loop over the same data
(a dict by OCR built, one lookup and an amount compare per row); medians of 3, interleaved. Peak
memory: a fresh process per size (5,000 and 10,000 rows) runs the engine loop; growth of VmHWM over
the data already built.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import random
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import replace
from decimal import Decimal
from typing import Any

from bench.common import ROOT, log
from ledgerlink.banks.adapters.base import BookingStatus
from ledgerlink.matching import engine, invoices, vouchers
from ledgerlink.matching.references import counterparty_key, history_key, make_ocr
from ledgerlink.matching.vouchers import Share
from ledgerlink.money import round_to_ore
from ledgerlink.sandbox.bank_data import EMPLOYEES, MERCHANTS, PEOPLE, SandboxRow, psu_slug, sandbox_rows
from ledgerlink.sandbox.open_items import sandbox_invoices

YEAR = 2025
PSU = "demo"
BANK_ACCOUNT = "1930"
HELD_OUT = (10, 11, 12)
LEARN_MONTHS = (0, 1, 3, 6, 9)

#: The bench's own answer key for recurring rows the sandbox does not book (counter accounts).
_MERCHANT_ACCOUNT = {
    "ICA Supermarket Hornstull": "7690",
    "Coop Konsum Södermalm": "7690",
    "Clas Ohlson Kungsgatan": "5410",
    "Biltema Sundbyberg": "5410",
    "Circle K Essingeleden": "5611",
    "Pressbyrån Centralen": "6110",
    "SJ AB": "5800",
    "Webhallen Sverige AB": "5410",
    "Staples Sweden": "6110",
    "Systembolaget Götgatan": "7690",
    "Apotek Hjärtat": "7690",
    "Espresso House Odenplan": "7690",
}
ANSWER_KEY: dict[str, tuple[Share, ...]] = {
    **{m: ((a, Decimal(1), None),) for m, a in _MERCHANT_ACCOUNT.items()},
    **{e: (("7210", Decimal(1), None),) for e in EMPLOYEES},
}
#: Split counterparties: booked two ways by something the row does not show (the bench keys it on the
#: amount): about 60/40 (no history can be sure) and about 90/10 (the history's 80 % bar is passed).
SPLIT = {
    "Webhallen Sverige AB": (Decimal("1500"), "6110", "5410"),
    "Systembolaget Götgatan": (Decimal("2250"), "7690", "6072"),
}
#: Namesakes: two counterparties sharing their first word, booked differently, one row each a month.
NAMESAKES = (
    ("Svenska Handelsbanken AB", "Ränta företagslån", "8410", 2800),
    ("Svenska Kraftnät", "Nätavgift", "5310", 1900),
)
_KNOWN = {
    "SKV": (("1630", Decimal(1), None),),
    "AVGIFT": (("6570", Decimal(1), None),),
}
_SWISH_IN = (("3001", Decimal("0.8"), "MP1"), ("2611", Decimal("0.2"), None))
assert set(MERCHANTS) == set(_MERCHANT_ACCOUNT)
assert PEOPLE


# --- quality --------------------------------------------------------------------------------------


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


class Case:
    """One booked row with its right answer: open items (and the remainder kind), or counter lines."""

    def __init__(
        self,
        row: engine.Row,
        month: int,
        kind: str,
        items: frozenset[str] = frozenset(),
        lines: tuple[Share, ...] = (),
        *,
        remainder: str = "none",
        sure: bool = True,
    ) -> None:
        self.row, self.month, self.kind, self.items, self.lines = row, month, kind, items, lines
        self.remainder = remainder
        self.sure = sure  # False: the right answer may be shown, but never as unambiguous

    @property
    def invoice(self) -> bool:
        return bool(self.items)

    def feedback(self) -> tuple[str, str, engine.Memory] | None:
        """The history entry booking this row right leaves (what ``record_booking`` stores)."""
        key = history_key(self.row.counterparty, self.row.description)
        if self.invoice:
            ledger = vouchers.RECEIVABLES if self.row.direction == "in" else vouchers.PAYABLES
            lines: tuple[Share, ...] = ((ledger, Decimal(1), None),)
        else:
            lines = self.lines
        if not key or not lines:
            return None
        return key, self.row.direction, engine.Memory(lines, self.row.date)

    def right(self, best: dict[str, Any] | None) -> bool:
        if best is None:
            return False
        if self.invoice:
            got = {a["open_item_external_id"] for a in best["allocations"]}
            return (
                best["kind"] == "invoice"
                and got == set(self.items)
                and best["remainder"]["kind"] == self.remainder
            )
        accounts = {line["account"] for line in best["lines"][1:]}
        return best["kind"] != "invoice" and accounts == {a for a, _, _ in self.lines}

    def wrongly_sure(self, best: dict[str, Any] | None) -> bool:
        return bool(best and best["unambiguous"] and (not self.sure or not self.right(best)))


def _item(d: dict[str, Any]) -> invoices.Item:
    return invoices.Item(
        d["external_id"],
        d["kind"],
        d["number"],
        d["ocr"],
        d["counterparty_name"],
        None,
        Decimal(d["amount_open"]),
        dt.date.fromisoformat(d["due_date"]),
    )


def _cases() -> tuple[list[Case], list[invoices.Item], int]:
    account = f"ftg-{psu_slug(PSU)}"
    start, end, as_of = dt.date(YEAR, 1, 1), dt.date(YEAR, 12, 31), dt.date(YEAR + 1, 1, 15)
    items = {i.external_id: i for i in map(_item, sandbox_invoices(PSU, start, end, as_of).open_items)}
    cases: list[Case] = []
    unknown = 0
    for sr in sandbox_rows(account, start, end, as_of):
        if sr.status is not BookingStatus.booked:
            continue
        case = _case(sr, items)
        if case is None:
            unknown += 1
        else:
            cases.append(case)
    cases += _namesakes()
    return cases, list(items.values()), unknown


def _row(e: Any, reference: str | None, parts: Sequence[invoices.Part] = ()) -> engine.Row:
    return engine.Row(
        amount=e.amount,
        date=e.booking_date,
        counterparty=e.counterparty,
        description=e.text,
        reference=reference,
        bank_account=BANK_ACCOUNT,
        parts=parts,
    )


def _case(sr: SandboxRow, items: dict[str, invoices.Item]) -> Case | None:
    """The row's case; an OCR payment may be made harder (:func:`_harder`), changing ``items``."""
    e = sr.event
    ext = f"sb-{e.ident(BookingStatus.booked)}"
    month = e.booking_date.month
    if e.code in ("BG", "PG") and e.ocr:
        if ext in items:
            return _harder(e, ext, items)
        # a Bankgiro deposit: its BgMax parts, as after uploading the file
        exts = [f"{ext}-{k}" for k in (1, 2, 3) if f"{ext}-{k}" in items]
        parts = [invoices.Part(items[x].amount_open, items[x].ocr, items[x].counterparty_name) for x in exts]
        return Case(_row(e, e.ocr, parts), month, "deposit", frozenset(exts))
    row = _row(e, e.ocr or e.end_to_end)
    if e.code in _KNOWN:
        return Case(row, month, "default", lines=_KNOWN[e.code])
    if e.code == "SWISH" and e.amount > 0:
        return Case(row, month, "history", lines=_SWISH_IN)
    if e.counterparty in SPLIT:
        limit, below, above = SPLIT[e.counterparty]
        account = below if -e.amount <= limit else above
        return Case(row, month, "split", lines=((account, Decimal(1), None),))
    if e.counterparty in ANSWER_KEY:
        return Case(row, month, "history", lines=ANSWER_KEY[e.counterparty])
    return None


def _harder(e: Any, ext: str, items: dict[str, invoices.Item]) -> Case:
    """An OCR payment of one invoice, or (by the row's identity, so every run makes the same year)
    something the sandbox never does: no reference (amount + counterparty; 15 % of the rows), a
    partial payment (15 % of the incoming), two invoices paid together without a reference (15 % of the
    incoming), no reference and a second open invoice of the same amount due three days later (5 %;
    the match must stay ambiguous)."""
    month, item = e.booking_date.month, items[ext]
    variant = _hash(ext) % 20
    incoming = e.amount > 0
    if variant in (0, 1, 2):
        return Case(_row(e, None), month, "amount", frozenset({ext}))
    if variant in (3, 4, 5) and incoming:  # the customer paid 80 % of the invoice
        items[ext] = replace(item, amount_open=round_to_ore(item.amount_open / Decimal("0.8")))
        return Case(_row(e, e.ocr), month, "partial", frozenset({ext}), remainder="partial_payment")
    if variant in (6, 7, 8) and incoming:  # two invoices of the customer, paid together
        first = round_to_ore(item.amount_open * Decimal("0.6"))
        del items[ext]
        for suffix, amount in (("a", first), ("b", item.amount_open - first)):
            ocr = make_ocr(str(_hash(f"{ext}{suffix}") % 10**8).zfill(8))
            items[ext + suffix] = replace(
                item,
                external_id=ext + suffix,
                number=item.number + suffix.upper(),
                ocr=ocr,
                amount_open=amount,
            )
        return Case(_row(e, None), month, "combination", frozenset({ext + "a", ext + "b"}))
    if variant == 9:  # a second invoice of the same amount, due three days later
        twin = replace(
            item,
            external_id=ext + "t",
            number=item.number + "T",
            ocr=make_ocr(str(_hash(ext + "t") % 10**8).zfill(8)),
            due_date=item.due_date + dt.timedelta(days=3),
        )
        items[twin.external_id] = twin
        return Case(_row(e, None), month, "twin", frozenset({ext}), sure=False)
    return Case(_row(e, e.ocr), month, "ocr", frozenset({ext}))


def _namesakes() -> list[Case]:
    out = []
    for month in range(1, 13):
        day = dt.date(YEAR, month, 20)
        for name, text, account, amount in NAMESAKES:
            row = engine.Row(Decimal(-amount - month), day, name, text, None, BANK_ACCOUNT)
            out.append(Case(row, month, "namesake", lines=((account, Decimal(1), None),)))
    return out


def _score(
    cases: list[Case], items: list[invoices.Item], learned: int, key: Callable[[str | None, str | None], str]
) -> dict[str, Any]:
    paid: set[str] = set()
    history: dict[tuple[str, str], list[engine.Memory]] = defaultdict(list)
    for case in cases:
        if case.month <= learned:
            paid |= case.items
            entry = case.feedback()
            if entry is not None:
                history[(key(case.row.counterparty, case.row.description), entry[1])].append(entry[2])
    index = invoices.OpenItems(i for i in items if i.external_id not in paid)
    kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0, 0, 0])
    right = wrong_sure = right_sure = scored = 0
    for case in cases:
        if case.month not in HELD_OUT:
            continue
        past = history.get((key(case.row.counterparty, case.row.description), case.row.direction), [])
        out = engine.suggest(case.row, index, [], past)
        best = out[0] if out else None
        ok, sure = case.right(best), case.wrongly_sure(best)
        ok_sure = bool(ok and best and best["unambiguous"] and not sure)
        scored += 1
        right += ok
        wrong_sure += sure
        right_sure += ok_sure
        for n, hit in enumerate((ok, True, sure, ok_sure)):
            kinds[case.kind][n] += hit
    return {
        "rows": scored,
        "right_share": round(right / scored, 3),
        "right_unambiguous_share": round(right_sure / scored, 3),
        "right_unambiguous": right_sure,
        "wrongly_unambiguous_share": round(wrong_sure / scored, 4),
        "wrongly_unambiguous": wrong_sure,
        **{f"{k}_right": f"{v[0]}/{v[1]}" for k, v in sorted(kinds.items())},
        **{f"{k}_right_unambiguous": f"{v[3]}/{v[1]}" for k, v in sorted(kinds.items())},
        **{f"{k}_wrongly_unambiguous": v[2] for k, v in sorted(kinds.items()) if v[2]},
    }


def first_word_key(counterparty: str | None, description: str | None) -> str:
    """The history key before issue 17's fix (the first word of the comparable name), for comparison."""
    name = counterparty_key(counterparty or description)
    return name.split(" ", 1)[0] if name else ""


def quality() -> dict[str, Any]:
    cases, items, unknown = _cases()
    curve = {str(n): _score(cases, items, n, history_key) for n in LEARN_MONTHS}
    for n, point in curve.items():
        log(f"matching quality after {n} months: {point}")
    first_word = {str(n): _score(cases, items, n, first_word_key) for n in LEARN_MONTHS}
    log(f"matching quality with the first-word history key, after 9 months: {first_word['9']}")
    return {
        "company": f"sandbox ftg-{psu_slug(PSU)}, {YEAR}, made harder",
        "rows_with_answer": len(cases),
        "rows_without_answer": unknown,
        "open_items": len(items),
        "held_out_months": list(HELD_OUT),
        "curve": curve,
        "curve_first_word_key": first_word,
    }


# --- speed ----------------------------------------------------------------------------------------


def _name(rng: random.Random) -> str:
    word = "".join(rng.choice("bdfghklmnprstv") + rng.choice("aeiouy") for _ in range(4))
    return f"{word.capitalize()} {rng.choice(('Bygg', 'Konsult', 'Handel', 'Service'))} AB"


def speed_data(
    rows: int, items: int = 20_000, seed: int = 17
) -> tuple[list[invoices.Item], list[engine.Row]]:
    """``items`` open items of 2,000 counterparties and ``rows`` rows paying distinct ones of them."""
    rng = random.Random(seed)
    names = list(dict.fromkeys(_name(rng) for _ in range(2_200)))[:2_000]
    start = dt.date(YEAR, 1, 1)
    made: list[invoices.Item] = []
    for n in range(items):
        who = n % len(names)
        made.append(
            invoices.Item(
                f"oi-{n}",
                "customer_invoice" if who < len(names) // 2 else "supplier_invoice",
                str(100_000 + n),
                make_ocr(str(10_000_000 + n)),
                names[who],
                None,
                Decimal(rng.randint(10_000, 5_000_000)) / 100,
                start + dt.timedelta(days=rng.randint(0, 360)),
            )
        )
    paid = rng.sample(made, rows)
    out: list[engine.Row] = []
    for n, item in enumerate(paid):
        sign = 1 if item.kind == "customer_invoice" else -1
        date = item.due_date + dt.timedelta(days=rng.randint(-3, 5))
        share = n % 20
        if share < 12:  # OCR, the open amount
            out.append(
                engine.Row(sign * item.amount_open, date, item.counterparty_name, "BG", item.ocr, "1930")
            )
        elif share < 15:  # OCR, a partial payment
            amount = (item.amount_open / 2).quantize(Decimal("0.01"))
            out.append(engine.Row(sign * amount, date, item.counterparty_name, "BG", item.ocr, "1930"))
        elif share < 18:  # no reference: amount + counterparty
            out.append(
                engine.Row(sign * item.amount_open, date, item.counterparty_name, "Betalning", None, "1930")
            )
        else:  # a card purchase
            merchant = MERCHANTS[n % len(MERCHANTS)]
            amount = -Decimal(rng.randint(2_500, 250_000)) / 100
            out.append(engine.Row(amount, date, merchant, f"Kortköp {merchant}", None, "1930"))
    return made, out


def engine_loop(items: list[invoices.Item], rows: list[engine.Row]) -> int:
    index = invoices.OpenItems(items)
    found = 0
    for row in rows:
        found += bool(engine.suggest(row, index, [], []))
    return found


def bare_loop(items: list[invoices.Item], rows: list[engine.Row]) -> int:
    by_ocr = {i.ocr: i for i in items if i.ocr}
    found = 0
    for row in rows:
        item = by_ocr.get(row.reference or "")
        found += item is not None and item.amount_open == abs(row.amount)
    return found


def probe(rows: int) -> None:
    """In a fresh process: VmHWM with the data built, and after the engine loop (KiB)."""
    items, data = speed_data(rows)

    def high_water_kib() -> int:
        with open("/proc/self/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))

    baseline = high_water_kib()
    engine_loop(items, data)
    print(baseline, high_water_kib())


def _peak(rows: int) -> tuple[int, int]:
    code = f"from bench.matching import probe; probe({rows})"
    result = subprocess.run(
        [sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT
    )
    baseline, peak = result.stdout.split()
    return int(baseline), int(peak)


def speed(rows: int, items: int, repetitions: int, memory_sizes: tuple[int, ...]) -> dict[str, Any]:
    open_items, data = speed_data(rows, items)
    real: list[float] = []
    bare: list[float] = []
    for _ in range(repetitions):  # interleaved, so that both see the same load on a shared machine
        started = time.perf_counter()
        engine_loop(open_items, data)
        real.append(time.perf_counter() - started)
        started = time.perf_counter()
        bare_loop(open_items, data)
        bare.append(time.perf_counter() - started)
    real_s, bare_s = statistics.median(real), statistics.median(bare)
    memory: dict[str, Any] = {}
    for size in memory_sizes:
        baseline, peak = _peak(size)
        memory[str(size)] = {
            "rss_with_data_mib": round(baseline / 1024, 1),
            "peak_rss_mib": round(peak / 1024, 1),
            "peak_rss_growth_mib": round((peak - baseline) / 1024, 1),
        }
    growths = [m["peak_rss_growth_mib"] for m in memory.values()]
    result = {
        "rows": rows,
        "open_items": items,
        "repetitions": repetitions,
        "engine_seconds": round(real_s, 3),
        "engine_rows_per_s": round(rows / real_s),
        "bare_seconds": round(bare_s, 4),
        "bare_rows_per_s": round(rows / bare_s),
        "ratio": round(bare_s / real_s, 4),
        "memory": memory,
        "memory_flat": max(growths) - min(growths) < 8,
    }
    log(f"matching speed: {result}")
    return result


def _run(rows: int, items: int, repetitions: int, memory_sizes: tuple[int, ...]) -> dict[str, Any]:
    q = quality()
    s = speed(rows, items, repetitions, memory_sizes)
    final = q["curve"][str(LEARN_MONTHS[-1])]
    zero_sure = all(p["wrongly_unambiguous"] == 0 for p in q["curve"].values())
    return {
        "quality": q,
        "speed": s,
        "goal": "0 rows wrongly marked unambiguous; memory flat in the number of rows",
        "met": zero_sure and s["memory_flat"],
        "final_right_share": final["right_share"],
    }


async def run(
    rows: int = 10_000,
    items: int = 20_000,
    repetitions: int = 3,
    memory_sizes: tuple[int, ...] = (5_000, 10_000),
) -> dict[str, Any]:
    return await asyncio.to_thread(_run, rows, items, repetitions, memory_sizes)
