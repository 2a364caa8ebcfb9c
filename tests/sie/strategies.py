"""Hypothesis strategies for SIE documents within what PC8 (code page 437) can hold."""

from __future__ import annotations

from decimal import Decimal

from hypothesis import strategies as st

from ledgerlink.sie import (
    Account,
    Address,
    Balance,
    Dimension,
    FinancialYear,
    ObjectBalance,
    PeriodBalance,
    SieDocument,
    SieObject,
    Voucher,
    VoucherRow,
)

# Every character code page 437 can encode, except the line breaks no SIE field may hold.
CP437_CHARACTERS = "".join(sorted(set(bytes(range(256)).decode("cp437")) - {"\r", "\n"}))

texts = st.text(alphabet=CP437_CHARACTERS, max_size=30)
awkward_texts = st.sampled_from(
    ['"', '\\"', "\\", 'a "b" c', "C:\\Temp\\", "{1 2}", "#VER", "  ", "\t", "Åäö ÉÜ"]
)
any_text = st.one_of(texts, awkward_texts)
identifiers = st.one_of(st.from_regex(r"[0-9]{1,6}", fullmatch=True), any_text)
dates = st.dates()


@st.composite
def amounts(draw: st.DrawFn) -> Decimal:
    places = draw(st.integers(min_value=0, max_value=4))
    units = draw(st.integers(min_value=-(10**12), max_value=10**12))
    return Decimal(units).scaleb(-places)


optional_amounts = st.none() | amounts()
object_lists = st.lists(st.tuples(st.integers(min_value=0, max_value=9999), identifiers), max_size=3).map(
    tuple
)

rows = st.builds(
    VoucherRow,
    account=identifiers,
    amount=amounts(),
    objects=object_lists,
    date=st.none() | dates,
    text=any_text,
    quantity=optional_amounts,
    signature=any_text,
)

vouchers = st.builds(
    Voucher,
    series=identifiers,
    number=identifiers,
    date=dates,
    text=any_text,
    rows=st.lists(rows, max_size=4),
    registration_date=st.none() | dates,
    signature=any_text,
    added_rows=st.lists(rows, max_size=2),
    removed_rows=st.lists(rows, max_size=2),
)

balances = st.builds(
    Balance,
    year=st.integers(min_value=-3, max_value=0),
    account=identifiers,
    amount=amounts(),
    quantity=optional_amounts,
)

object_balances = st.builds(
    ObjectBalance,
    year=st.integers(min_value=-3, max_value=0),
    account=identifiers,
    objects=object_lists,
    amount=amounts(),
    quantity=optional_amounts,
)

periods = st.from_regex(r"[12][0-9]{3}(0[1-9]|1[0-2])", fullmatch=True)
period_balances = st.builds(
    PeriodBalance,
    year=st.integers(min_value=-3, max_value=0),
    period=periods,
    account=identifiers,
    objects=object_lists,
    amount=amounts(),
    quantity=optional_amounts,
)


@st.composite
def accounts(draw: st.DrawFn) -> dict[str, Account]:
    chart = draw(
        st.lists(
            st.builds(
                Account,
                number=identifiers,
                name=any_text,
                type=st.none() | st.sampled_from(["T", "S", "K", "I"]),
                sru=st.none() | st.from_regex(r"[0-9]{4}", fullmatch=True),
                unit=st.none() | any_text,
            ),
            max_size=5,
            unique_by=lambda account: account.number,
        )
    )
    return {account.number: account for account in chart}


@st.composite
def dimensions(draw: st.DrawFn) -> dict[int, Dimension]:
    numbers = draw(st.lists(st.integers(min_value=1, max_value=99), max_size=4, unique=True))
    return {
        number: Dimension(number, draw(any_text), draw(st.none() | st.integers(min_value=1, max_value=99)))
        for number in numbers
    }


documents = st.builds(
    SieDocument,
    program=any_text,
    program_version=any_text,
    company_name=any_text,
    org_number=any_text,
    financial_years=st.lists(
        st.builds(FinancialYear, index=st.integers(min_value=-3, max_value=0), start=dates, end=dates),
        max_size=2,
    ),
    accounts=accounts(),
    opening_balances=st.lists(balances, max_size=3),
    closing_balances=st.lists(balances, max_size=3),
    results=st.lists(balances, max_size=3),
    vouchers=st.lists(vouchers, max_size=4),
    flag=st.integers(min_value=0, max_value=1),
    generated=dates,
    generated_by=any_text,
    company_id=any_text,
    company_type=any_text,
    address=st.none() | st.builds(Address, any_text, any_text, any_text, any_text),
    tax_year=st.none() | st.integers(min_value=1900, max_value=2100),
    currency=any_text,
    chart_type=any_text,
    balances_until=st.none() | dates,
    dimensions=dimensions(),
    objects=st.lists(
        st.builds(SieObject, st.integers(min_value=0, max_value=99), identifiers, any_text), max_size=3
    ),
    object_opening_balances=st.lists(object_balances, max_size=2),
    object_closing_balances=st.lists(object_balances, max_size=2),
    period_balances=st.lists(period_balances, max_size=3),
    period_budgets=st.lists(period_balances, max_size=2),
)
