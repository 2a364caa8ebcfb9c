"""Errors of open items, booking rules, suggestions and BgMax files (an unknown transaction or bank
account is its owner's error: ``inbox.errors``, ``banks.errors``)."""

from __future__ import annotations

from ledgerlink.errors import Conflict, NotFound, Unprocessable


class OpenItemNotFound(NotFound):
    code = "open_item_not_found"
    title = "Open item not found"


class BookingRuleNotFound(NotFound):
    code = "booking_rule_not_found"
    title = "Booking rule not found"


class UnknownOpenItems(Unprocessable):
    code = "unknown_open_items"


class InvalidBgmax(Unprocessable):
    code = "invalid_bgmax"


class BgmaxConflict(Conflict):
    code = "bgmax_conflict"
