"""The TLS test bank: the sandbox Berlin Group bank served by uvicorn on loopback with client
certificates required (mutual TLS against a test CA) and every ``/v1`` request's signature verified.

Start one (writes the test CA, server certificate, QWAC and QSealC to ``--dir`` first)::

    uv run python -m ledgerlink.testbank --dir var/tls --port 8443

and point a bank at it (``docs/banks.md`` lists the settings).
"""

from __future__ import annotations

import argparse
import contextlib
import ssl
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from pathlib import Path

import uvicorn
from cryptography import x509
from starlette.types import ASGIApp

from ledgerlink.sandbox.bank import create_sandbox_bank_app
from ledgerlink.testbank.pki import PkiFiles, make_pki
from ledgerlink.testbank.verify import SignatureCheck

HOST = "127.0.0.1"


def create_tls_bank_app(pki: PkiFiles, *, decoupled_polls: int = 2) -> ASGIApp:
    """The sandbox bank behind the signature check (the TLS part is the server's)."""
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    return SignatureCheck(create_sandbox_bank_app(decoupled_polls=decoupled_polls), ca=ca)


def server_config(pki: PkiFiles, app: ASGIApp, *, port: int) -> uvicorn.Config:
    """uvicorn on loopback: our server certificate, and a client certificate from the test CA required."""
    return uvicorn.Config(
        app,
        host=HOST,
        port=port,
        ssl_certfile=str(pki.server_cert),
        ssl_keyfile=str(pki.server_key),
        ssl_ca_certs=str(pki.ca_cert),
        ssl_cert_reqs=ssl.CERT_REQUIRED,
        log_level="warning",
        lifespan="off",
    )


@contextlib.contextmanager
def running_tls_bank(pki: PkiFiles, *, decoupled_polls: int = 2) -> Iterator[str]:
    """Serve the TLS test bank on a free loopback port in a background thread; yields its base URL."""
    server = uvicorn.Server(
        server_config(pki, create_tls_bank_app(pki, decoupled_polls=decoupled_polls), port=0)
    )
    thread = threading.Thread(target=server.run, name="tls-test-bank", daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if not thread.is_alive() or time.monotonic() > deadline:
            raise RuntimeError("the TLS test bank did not start")
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"https://{HOST}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def settings_lines(pki: PkiFiles, bank_id: str, base_url: str) -> list[str]:
    """The environment a bank needs to use this test bank (printed at start)."""
    prefix = f"LEDGERLINK_BANKS__{bank_id.upper()}__"
    return [
        f"{prefix}BASE_URL={base_url}",
        f"{prefix}CLIENT_CERT_FILE={pki.qwac_cert}",
        f"{prefix}CLIENT_KEY_FILE={pki.qwac_key}",
        f"{prefix}CA_BUNDLE_FILE={pki.ca_cert}",
        f"{prefix}SIGNING_KEY_FILE={pki.qseal_key}",
        f"{prefix}SIGNING_CERT_FILE={pki.qseal_cert}",
    ]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ledgerlink.testbank", description=__doc__)
    parser.add_argument("--dir", type=Path, default=Path("var/tls"), help="where the PEM files go")
    parser.add_argument("--port", type=int, default=8443)
    parser.add_argument("--bank-id", default="sandbox", help="the bank id the printed settings are for")
    args = parser.parse_args(argv)
    pki = make_pki(args.dir.resolve())
    base_url = f"https://{HOST}:{args.port}"
    sys.stdout.write(
        f"TLS test bank on {base_url} (client certificate required; signatures verified)\n"
        f"Certificates in {pki.directory}. Settings for bank {args.bank_id!r}:\n\n"
        + "".join(f"  {line}\n" for line in settings_lines(pki, args.bank_id, base_url))
        + "\n"
    )
    sys.stdout.flush()
    uvicorn.Server(server_config(pki, create_tls_bank_app(pki), port=args.port)).run()
    return 0


__all__ = ["create_tls_bank_app", "main", "running_tls_bank", "server_config", "settings_lines"]
