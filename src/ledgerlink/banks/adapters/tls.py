"""The TLS side of a bank's HTTP client: one ``ssl.SSLContext`` per bank configuration, with the
eIDAS QWAC loaded for mutual TLS (PSD2 RTS art. 34: a provider identifies itself in the handshake).

The context is handed to httpx as ``verify=``: with httpx 0.28 a ``verify`` path passed together with
``cert=`` silently drops the client certificate, so the certificate is loaded here with
``load_cert_chain`` instead. Contexts are built once per (certificate, key, CA bundle) and reused by
every adapter of that bank (building one costs ~50 ms of CPU; a sync run builds an adapter per phase).
"""

from __future__ import annotations

import functools
import socket
import ssl
from typing import TYPE_CHECKING

import httpx

from ledgerlink.banks.adapters.base import CertificateInvalid

if TYPE_CHECKING:
    from ledgerlink.config import BankEndpointSettings


def setting_name(bank_id: str, field: str) -> str:
    """The environment variable of one bank setting, e.g. ``LEDGERLINK_BANKS__NORDEA__CLIENT_CERT_FILE``."""
    return f"LEDGERLINK_BANKS__{bank_id.upper()}__{field.upper()}"


@functools.cache
def shared_ssl_context() -> ssl.SSLContext:
    """The default context (certifi's CA bundle, as httpx's default) for banks without a QWAC."""
    return httpx.create_ssl_context()


@functools.cache
def _context(cert_file: str | None, key_file: str | None, ca_file: str | None) -> ssl.SSLContext:
    context = ssl.create_default_context(cafile=ca_file) if ca_file else httpx.create_ssl_context()
    if cert_file:
        context.load_cert_chain(cert_file, key_file)
    return context


def tls_context(bank_id: str, endpoint: BankEndpointSettings) -> ssl.SSLContext:
    """The bank's TLS context: the shared default, or one carrying the configured QWAC / CA bundle.

    Raises :class:`CertificateInvalid` naming the setting when a file is missing or unusable."""
    cert, key, ca = endpoint.client_cert_file, endpoint.client_key_file, endpoint.ca_bundle_file
    if not cert and not ca:
        return shared_ssl_context()
    if bool(cert) != bool(key):
        missing = "client_key_file" if cert else "client_cert_file"
        raise CertificateInvalid(bank_id, f"{setting_name(bank_id, missing)} is not set")
    try:
        return _context(cert, key, ca)
    except FileNotFoundError as exc:
        raise CertificateInvalid(bank_id, f"certificate file not found: {exc.filename}") from exc
    except (ssl.SSLError, OSError, ValueError) as exc:
        field = "ca_bundle_file" if ca and not cert else "client_cert_file"
        raise CertificateInvalid(
            bank_id,
            f"the QWAC or key is unusable ({type(exc).__name__}); check {setting_name(bank_id, field)}",
        ) from exc


def tls_failure(exc: BaseException) -> str | None:
    """If a transport error is a TLS handshake refusal, a short reason (no secrets); else None.

    A server that requires a client certificate refuses the handshake (TLS 1.2) or answers the first
    read with an alert (TLS 1.3: ``certificate required``); an untrusted server certificate fails
    verification on our side."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, ssl.SSLCertVerificationError):
            return "the bank's server certificate is not trusted"
        if isinstance(current, ssl.SSLError):
            reason = (current.reason or "handshake failed").lower().replace("_", " ")
            return f"TLS refused: {reason}"
        current = current.__cause__ or current.__context__
    text = str(exc).upper()
    if "CERTIFICATE" in text or "SSL" in text or "TLS" in text:
        return "TLS refused"
    return None


def probe_refusal(host: str, port: int, context: ssl.SSLContext, *, timeout: float = 3.0) -> str | None:
    """After a connection broke: open a fresh TLS connection with the same context and send nothing.

    With TLS 1.3 a server that refuses our client certificate closes the connection just after the
    handshake, and the request we had written meets a broken pipe: nothing in that error says why. An
    HTTP server never closes a fresh connection before a request unless it refused it, so an immediate
    close (or a TLS error) here is the answer; a server that waits for our request refused nothing.
    Blocking: run it in a thread."""
    try:
        with (
            socket.create_connection((host, port), timeout=timeout) as raw,
            context.wrap_socket(raw, server_hostname=host) as tls,
        ):
            if tls.recv(1) == b"":
                return "TLS refused: the bank closed the connection right after the handshake"
    except ssl.SSLCertVerificationError:
        return "the bank's server certificate is not trusted"
    except ssl.SSLError as exc:
        return f"TLS refused: {(exc.reason or 'handshake failed').lower().replace('_', ' ')}"
    except ConnectionResetError:
        return "TLS refused: the bank reset the connection right after the handshake"
    except OSError:  # timeout (the server waits for a request), unreachable: not a refusal
        return None
    return None


__all__ = ["probe_refusal", "setting_name", "shared_ssl_context", "tls_context", "tls_failure"]
