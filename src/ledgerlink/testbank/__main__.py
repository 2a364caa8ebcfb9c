"""``python -m ledgerlink.testbank``: write a test PKI and serve the TLS test bank."""

from ledgerlink.testbank.server import main

raise SystemExit(main())
