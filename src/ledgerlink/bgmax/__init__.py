"""BgMax: Bankgirot's file of incoming Bankgiro payments (a pure reader and a writer for tests/sandbox)."""

from ledgerlink.bgmax.reader import BgmaxError, Deposit, Payment, read
from ledgerlink.bgmax.writer import write

__all__ = ["BgmaxError", "Deposit", "Payment", "read", "write"]
