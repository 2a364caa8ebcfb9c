"""The closing feature's errors (rendered as problem+json by the foundation)."""

from __future__ import annotations

from ledgerlink.errors import Conflict, NotFound, Unprocessable


class ClosingNotFound(NotFound):
    code = "closing_not_found"


class ImportNotFound(NotFound):
    code = "import_not_found"


class AdjustmentNotFound(NotFound):
    code = "adjustment_not_found"


class ExportNotFound(NotFound):
    code = "export_not_found"


class InvalidFinancialYear(Unprocessable):
    code = "financial_year_invalid"


class InvalidSieFile(Unprocessable):
    code = "sie_invalid"


class DataSourceMismatch(Conflict):
    code = "data_source_mismatch"


class InvalidAdjustment(Unprocessable):
    code = "adjustment_invalid"


class AdjustmentExported(Conflict):
    code = "adjustment_exported"


class NothingImported(Conflict):
    code = "closing_not_imported"


class InvalidExport(Unprocessable):
    code = "export_invalid"
