"""Compact JWS signing (RS256 / PS256) for request objects and application JWTs.

OBIE banks want the authorisation request as a signed JWT (``request=``) and the aggregator
authenticates our application with a JWT signed by the application key. Both need only signing with
an RSA private key we hold, so this is a few lines over ``cryptography`` rather than a JOSE library.
"""

from __future__ import annotations

import base64
import json
from typing import Any, Literal

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

SigningAlg = Literal["RS256", "PS256"]


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def looks_like_private_key(value: str | None) -> bool:
    return bool(value) and "PRIVATE KEY-----" in (value or "")


def sign_jwt(claims: dict[str, Any], private_key_pem: str, *, kid: str | None, alg: SigningAlg) -> str:
    """Sign ``claims`` with an RSA private key (PEM). Raises ``ValueError`` for an unusable key."""
    key = serialization.load_pem_private_key(private_key_pem.encode(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("signing key is not an RSA private key")
    header: dict[str, str] = {"typ": "JWT", "alg": alg}
    if kid:
        header["kid"] = kid
    signing_input = ".".join(
        b64url(json.dumps(part, separators=(",", ":"), sort_keys=True).encode()) for part in (header, claims)
    ).encode("ascii")
    pad: padding.AsymmetricPadding = (
        padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size)
        if alg == "PS256"
        else padding.PKCS1v15()
    )
    signature = key.sign(signing_input, pad, hashes.SHA256())
    return signing_input.decode("ascii") + "." + b64url(signature)
