"""``python -m ledgerlink.banks.testbank``: write a test PKI and serve the TLS test bank."""

from ledgerlink.banks.testbank.server import main

raise SystemExit(main())
