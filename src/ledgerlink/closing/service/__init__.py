"""The closing feature's services: closings and read models, imports, adjustments, exports."""

from ledgerlink.closing.service.adjustments import (
    adjustments_sie,
    check_adjustment,
    create_adjustment,
    delete_adjustment,
    list_adjustments,
)
from ledgerlink.closing.service.closings import (
    closing_out,
    create_closing,
    get_closing,
    import_out,
    list_closings,
    list_vouchers,
    specifications,
    trial_balance,
    update_closing,
)
from ledgerlink.closing.service.exports import (
    check_series,
    export_out,
    run_export,
    start_export,
)
from ledgerlink.closing.service.imports import (
    check_sie,
    check_sie_upload,
    run_import,
    sie_limits,
    start_fortnox_import,
    start_sie_import,
    trial_balance_rows,
)
from ledgerlink.closing.service.sending import marker_of, voucher_description

__all__ = [
    "adjustments_sie",
    "check_adjustment",
    "check_series",
    "check_sie",
    "check_sie_upload",
    "closing_out",
    "create_adjustment",
    "create_closing",
    "delete_adjustment",
    "export_out",
    "get_closing",
    "import_out",
    "list_adjustments",
    "list_closings",
    "list_vouchers",
    "marker_of",
    "run_export",
    "run_import",
    "sie_limits",
    "specifications",
    "start_export",
    "start_fortnox_import",
    "start_sie_import",
    "trial_balance",
    "trial_balance_rows",
    "update_closing",
    "voucher_description",
]
