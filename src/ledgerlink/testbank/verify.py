"""What the TLS test bank checks on every API request: the ``Digest`` of the body and the
draft-cavage-http-signatures-10 ``Signature`` (``rsa-sha256``), against the ``TPP-Signature-Certificate``
the request carries (which must be issued by the trusted CA and match the ``keyId``) or, for banks
that register the certificate up front (Nordea), against that registered certificate.

:func:`verify_request` is pure (tests use it on requests captured elsewhere); :class:`SignatureCheck`
is the ASGI middleware that answers Berlin Group ``401`` ``tppMessages`` when a check fails.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import re
from collections.abc import Mapping

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from ledgerlink.banks.adapters.signing import certificate_key_id, digest_header, signing_string

_PARAM = re.compile(r'(\w+)="([^"]*)"')


class SignatureRefused(Exception):
    """A request whose signature does not verify. ``code`` is the Berlin Group message code."""

    def __init__(self, code: str, text: str) -> None:
        super().__init__(f"{code}: {text}")
        self.code = code
        self.text = text


def issued_by(certificate: x509.Certificate, ca: x509.Certificate, *, now: dt.datetime | None = None) -> bool:
    """Whether ``certificate`` is signed by ``ca``'s key, names it as issuer and is valid now."""
    at = now or dt.datetime.now(dt.UTC)
    if certificate.issuer != ca.subject:
        return False
    if not certificate.not_valid_before_utc <= at <= certificate.not_valid_after_utc:
        return False
    public_key = ca.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey) or certificate.signature_hash_algorithm is None:
        return False
    try:
        public_key.verify(
            certificate.signature,
            certificate.tbs_certificate_bytes,
            padding.PKCS1v15(),
            certificate.signature_hash_algorithm,
        )
    except InvalidSignature:
        return False
    return True


def verify_request(
    method: str,
    target: str,
    headers: Mapping[str, str],
    body: bytes,
    *,
    ca: x509.Certificate,
    registered: x509.Certificate | None = None,
    required: tuple[str, ...] = ("digest",),
) -> x509.Certificate:
    """Check one request; return the certificate that signed it, or raise :class:`SignatureRefused`.

    ``headers`` are matched case-insensitively; ``required`` names headers the signature must cover."""
    lowered = {k.lower(): v for k, v in headers.items()}
    raw = lowered.get("signature")
    if not raw:
        raise SignatureRefused("SIGNATURE_MISSING", "no Signature header")
    params = dict(_PARAM.findall(raw))
    if params.get("algorithm", "rsa-sha256").lower() != "rsa-sha256" or not params.get("signature"):
        raise SignatureRefused("SIGNATURE_INVALID", "unsupported algorithm or no signature")
    carried = lowered.get("tpp-signature-certificate")
    if carried:
        try:
            certificate = x509.load_der_x509_certificate(base64.b64decode(carried))
        except ValueError as exc:
            raise SignatureRefused("CERTIFICATE_INVALID", "TPP-Signature-Certificate is unreadable") from exc
        if not issued_by(certificate, ca):
            raise SignatureRefused("CERTIFICATE_INVALID", "the signing certificate is not from a trusted CA")
        if params.get("keyId") != certificate_key_id(certificate):
            raise SignatureRefused("SIGNATURE_INVALID", "keyId does not name the signing certificate")
    elif registered is not None:
        certificate = registered
    else:
        raise SignatureRefused("CERTIFICATE_MISSING", "no TPP-Signature-Certificate")
    names = params.get("headers", "date").split()
    for name in required:
        if name not in names:
            raise SignatureRefused("SIGNATURE_INVALID", f"the signature does not cover {name}")
    if ("digest" in names or "digest" in lowered) and lowered.get("digest") != digest_header(body):
        raise SignatureRefused("SIGNATURE_INVALID", "Digest does not match the body")
    missing = [n for n in names if n != "(request-target)" and n not in lowered]
    if missing:
        raise SignatureRefused("SIGNATURE_INVALID", f"signed header {missing[0]} is not on the request")
    text = signing_string(method, target, lowered, names)
    public_key = certificate.public_key()
    if not isinstance(public_key, rsa.RSAPublicKey):
        raise SignatureRefused("CERTIFICATE_INVALID", "the signing certificate has no RSA key")
    try:
        public_key.verify(base64.b64decode(params["signature"]), text, padding.PKCS1v15(), hashes.SHA256())
    except (InvalidSignature, ValueError) as exc:
        raise SignatureRefused("SIGNATURE_INVALID", "the signature does not verify") from exc
    return certificate


class SignatureCheck:
    """ASGI middleware: requests under ``protected_prefix`` must carry a valid Berlin Group signature."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        ca: x509.Certificate,
        protected_prefix: str = "/v1/",
        required: tuple[str, ...] = ("digest", "x-request-id"),
    ) -> None:
        self.app = app
        self.ca = ca
        self.protected_prefix = protected_prefix
        self.required = required

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not str(scope["path"]).startswith(self.protected_prefix):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        more = True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        target = scope.get("raw_path", scope["path"].encode()).decode("ascii")
        if scope.get("query_string"):
            target = f"{target}?{scope['query_string'].decode('ascii')}"
        try:
            verify_request(scope["method"], target, headers, body, ca=self.ca, required=self.required)
        except SignatureRefused as refused:
            payload = json.dumps(
                {"tppMessages": [{"category": "ERROR", "code": refused.code, "text": refused.text}]}
            ).encode()
            await send(
                {
                    "type": "http.response.start",
                    "status": 401,
                    "headers": [
                        (b"content-type", b"application/json"),
                        (b"content-length", b"%d" % len(payload)),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": payload})
            return

        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if replayed:
                return await receive()
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        await self.app(scope, replay, send)


__all__ = ["SignatureCheck", "SignatureRefused", "issued_by", "verify_request"]
