"""Limits a reader enforces on untrusted files, so that memory stays bounded whatever the file and a
value that cannot be stored is refused with its line instead of failing later.

Every limit is optional (``None``: no limit); :class:`SieReader` without limits reads anything the
format allows.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class SieLimits:
    #: distinct accounts (``#KONTO`` and accounts used without one)
    max_accounts: int | None = None
    #: records kept in ``reader.document`` besides the accounts (balances, objects, periods, ...)
    max_records: int | None = None
    #: ``#TRANS`` rows of one voucher (the reader holds one voucher at a time)
    max_rows_per_voucher: int | None = None
    #: characters of any field
    max_field_length: int | None = None
    #: characters of an account number, a voucher series or a voucher number
    max_id_length: int | None = None
    #: digits before the decimal point of an amount or a quantity
    max_amount_digits: int | None = None
    #: a NUL character anywhere is refused (it is never text)
    refuse_nul: bool = True
