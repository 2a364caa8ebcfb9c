"""Signed requests (eIDAS QSealC): the one signing module every adapter that needs it uses.

Profiles (facts in ``docs/banks.md``):

* **Berlin Group** (Swedbank, and any BG bank configured with a signing key): ``Digest`` = SHA-256 of
  the body (``SHA-256=<base64>``), ``Signature`` per draft-cavage-http-signatures-10 with
  ``rsa-sha256`` and ``keyId="SN=<serial hex>,CA=<issuer DN>"`` over the headers the bank lists (the
  ones present on the request), and ``TPP-Signature-Certificate`` = the QSealC as base64 DER.
* **Nordea**: ``Signature`` (draft-cavage-10, ``rsa-sha256``, ``keyId`` = our client id) over
  ``(request-target) x-nordea-originating-host x-nordea-originating-date``, plus ``content-type
  digest`` on requests with a body; Nordea knows the certificate from the developer portal.
* **Bank Norwegian**: the Berlin Group signature over its own header set (``Request-ID``,
  ``Region-ID``, ``TPP-Client-ID``, ``PSU-*``, ``Consent-ID``, ``Date``, ``Digest``).
* **OBIE** (Revolut, Danske Bank, Ålandsbanken): a detached JWS of the body in ``x-jws-signature``
  (:func:`detached_jws`, built with joserfc); request objects and application JWTs are signed with
  :func:`sign_jwt`.

Key material is read once per (key file, certificate file). A missing or unusable key raises
:class:`~ledgerlink.banks.adapters.base.SignatureInvalid` naming the setting.
"""

from __future__ import annotations

import base64
import email.utils
import functools
import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from joserfc import jws, jwt
from joserfc.jwk import RSAKey
from joserfc.registry import HeaderParameter

from ledgerlink.banks.adapters.base import SignatureInvalid
from ledgerlink.banks.adapters.tls import setting_name

if TYPE_CHECKING:
    from ledgerlink.config import BankEndpointSettings

SigningAlg = Literal["RS256", "PS256"]
KeyIdStyle = Literal["certificate", "client_id"]

#: Berlin Group: ``digest`` and ``x-request-id`` always; the others when the request carries them.
BERLIN_GROUP_HEADERS = ("digest", "x-request-id", "psu-id", "psu-corporate-id", "tpp-redirect-uri", "date")
#: Bank Norwegian signs its own header set (the BG signature, its header names).
BANK_NORWEGIAN_HEADERS = (
    "request-id",
    "region-id",
    "tpp-client-id",
    "psu-id",
    "psu-ip-address",
    "consent-id",
    "tpp-redirect-uri",
    "date",
    "digest",
)
NORDEA_HEADERS = ("(request-target)", "x-nordea-originating-host", "x-nordea-originating-date")
NORDEA_BODY_HEADERS = ("content-type", "digest")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def digest_header(body: bytes) -> str:
    """``Digest`` of a body (empty for a GET): ``SHA-256=<base64 of the SHA-256>``."""
    return "SHA-256=" + b64(hashlib.sha256(body).digest())


def certificate_key_id(certificate: x509.Certificate) -> str:
    """Berlin Group ``keyId``: the certificate's serial number (hex) and its issuer's DN."""
    return f"SN={certificate.serial_number:x},CA={certificate.issuer.rfc4514_string()}"


@dataclass(frozen=True, slots=True)
class SigningMaterial:
    """A QSealC: the RSA private key and its certificate."""

    key: rsa.RSAPrivateKey
    certificate: x509.Certificate

    @property
    def key_id(self) -> str:
        return certificate_key_id(self.certificate)

    @property
    def certificate_b64(self) -> str:
        return b64(self.certificate.public_bytes(serialization.Encoding.DER))

    def sign(self, data: bytes, alg: SigningAlg = "RS256") -> bytes:
        pad: padding.AsymmetricPadding = (
            padding.PSS(mgf=padding.MGF1(hashes.SHA256()), salt_length=hashes.SHA256.digest_size)
            if alg == "PS256"
            else padding.PKCS1v15()
        )
        return self.key.sign(data, pad, hashes.SHA256())


def load_private_key(pem: bytes) -> rsa.RSAPrivateKey:
    """An RSA private key from PEM. Raises ``ValueError`` for anything else."""
    key = serialization.load_pem_private_key(pem, password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        raise ValueError("signing key is not an RSA private key")
    return key


@functools.cache
def _material(key_file: str, cert_file: str) -> SigningMaterial:
    with open(key_file, "rb") as f:
        key = load_private_key(f.read())
    with open(cert_file, "rb") as f:
        certificate = x509.load_pem_x509_certificate(f.read())
    return SigningMaterial(key=key, certificate=certificate)


def signing_material(bank_id: str, endpoint: BankEndpointSettings) -> SigningMaterial | None:
    """The bank's QSealC from ``__SIGNING_KEY_FILE`` / ``__SIGNING_CERT_FILE``, or None if unset."""
    key_file, cert_file = endpoint.signing_key_file, endpoint.signing_cert_file
    if not key_file and not cert_file:
        return None
    if not key_file or not cert_file:
        missing = "signing_cert_file" if key_file else "signing_key_file"
        raise SignatureInvalid(bank_id, f"{setting_name(bank_id, missing)} is not set")
    try:
        return _material(key_file, cert_file)
    except OSError as exc:
        raise SignatureInvalid(bank_id, f"signing file cannot be read: {exc.filename}") from exc
    except (ValueError, TypeError) as exc:
        raise SignatureInvalid(
            bank_id,
            f"the QSealC key or certificate is unusable; check {setting_name(bank_id, 'signing_key_file')}",
        ) from exc


# --------------------------------------------------------------------------- HTTP signatures


def signing_string(method: str, target: str, headers: Mapping[str, str], names: Sequence[str]) -> bytes:
    """draft-cavage-http-signatures-10 §2.3: one ``name: value`` line per listed header."""
    lines = []
    for name in names:
        if name == "(request-target)":
            lines.append(f"(request-target): {method.lower()} {target}")
        else:
            lines.append(f"{name}: {headers[name]}")
    return "\n".join(lines).encode("utf-8")


def request_target(url: httpx.URL) -> str:
    return url.raw_path.decode("ascii")


@dataclass(frozen=True, slots=True)
class HttpSignatureProfile:
    """Which headers a bank wants signed and how it names our key."""

    headers: tuple[str, ...]
    #: headers signed only on requests with a body (Nordea's ``content-type digest``)
    body_headers: tuple[str, ...] = ()
    key_id: KeyIdStyle = "certificate"
    send_certificate: bool = True
    add_date: bool = True
    digest_on_get: bool = True


BERLIN_GROUP = HttpSignatureProfile(headers=BERLIN_GROUP_HEADERS)
BANK_NORWEGIAN = HttpSignatureProfile(headers=BANK_NORWEGIAN_HEADERS)
NORDEA = HttpSignatureProfile(
    headers=NORDEA_HEADERS,
    body_headers=NORDEA_BODY_HEADERS,
    key_id="client_id",
    send_certificate=False,
    add_date=False,
    digest_on_get=False,
)


class RequestSigner:
    """Adds ``Digest``, ``Signature`` (and ``TPP-Signature-Certificate``) to a built request."""

    def __init__(
        self, material: SigningMaterial, profile: HttpSignatureProfile, *, client_id: str | None = None
    ) -> None:
        self.material = material
        self.profile = profile
        self.client_id = client_id

    def key_id(self) -> str:
        if self.profile.key_id == "client_id" and self.client_id:
            return self.client_id
        return self.material.key_id

    def sign(self, request: httpx.Request) -> None:
        body = request.read()
        has_body = bool(body) or request.method in ("POST", "PUT", "PATCH")
        headers = request.headers
        if has_body or self.profile.digest_on_get:
            headers["Digest"] = digest_header(body)
        if self.profile.add_date and "date" not in headers:
            headers["Date"] = email.utils.formatdate(usegmt=True)
        if has_body and "content-type" not in headers and "content-type" in self.profile.body_headers:
            headers["Content-Type"] = "application/json"
        wanted = self.profile.headers + (self.profile.body_headers if has_body else ())
        names = [n for n in wanted if n == "(request-target)" or n in headers]
        lowered = {k.lower(): v for k, v in headers.items()}
        text = signing_string(request.method, request_target(request.url), lowered, names)
        signature = b64(self.material.sign(text))
        headers["Signature"] = (
            f'keyId="{self.key_id()}",algorithm="rsa-sha256",'
            f'headers="{" ".join(names)}",signature="{signature}"'
        )
        if self.profile.send_certificate:
            headers["TPP-Signature-Certificate"] = self.material.certificate_b64


# --------------------------------------------------------------------------- JOSE (OBIE, aggregator)


def _jwk(private_key_pem: str | bytes) -> RSAKey:
    pem = private_key_pem.encode() if isinstance(private_key_pem, str) else private_key_pem
    return RSAKey.import_key(load_private_key(pem))


def looks_like_private_key(value: str | None) -> bool:
    return bool(value) and "PRIVATE KEY-----" in (value or "")


def sign_jwt(claims: dict[str, Any], private_key_pem: str, *, kid: str | None, alg: SigningAlg) -> str:
    """A compact JWT of ``claims`` signed with an RSA private key (PEM). ``ValueError`` for a bad key."""
    header: dict[str, Any] = {"typ": "JWT", "alg": alg}
    if kid:
        header["kid"] = kid
    return jwt.encode(header, claims, _jwk(private_key_pem), algorithms=[alg])


#: OBIE's own protected-header claims, which a verifier must understand (``crit``).
OBIE_IAT = "http://openbanking.org.uk/iat"
OBIE_ISS = "http://openbanking.org.uk/iss"
OBIE_TAN = "http://openbanking.org.uk/tan"
OBIE_CRIT = [OBIE_IAT, OBIE_ISS, OBIE_TAN]


def detached_jws(
    body: bytes, material: SigningMaterial, *, kid: str, issuer: str, trust_anchor: str, iat: int
) -> str:
    """OBIE ``x-jws-signature``: a PS256 JWS over the body with the payload left out (``header..sig``)."""
    protected = {
        "alg": "PS256",
        "kid": kid,
        "typ": "JOSE",
        "cty": "application/json",
        OBIE_IAT: iat,
        OBIE_ISS: issuer,
        OBIE_TAN: trust_anchor,
        "crit": OBIE_CRIT,
    }
    registry = jws.JWSRegistry(header_registry=_obie_header_registry(), algorithms=["PS256"])
    compact = jws.serialize_compact(
        protected, body, RSAKey.import_key(material.key), algorithms=["PS256"], registry=registry
    )
    head, _, signature = compact.split(".")
    return f"{head}..{signature}"


def _obie_header_registry() -> dict[str, HeaderParameter]:
    return {
        OBIE_IAT: HeaderParameter("OBIE signing time", "int"),
        OBIE_ISS: HeaderParameter("OBIE signer", "str"),
        OBIE_TAN: HeaderParameter("OBIE trust anchor", "str"),
    }


def signer_for(
    bank_id: str, endpoint: BankEndpointSettings, profile: HttpSignatureProfile
) -> RequestSigner | None:
    """The bank's request signer when a QSealC is configured, else None."""
    material = signing_material(bank_id, endpoint)
    if material is None:
        return None
    return RequestSigner(material, profile, client_id=endpoint.client_id)


__all__ = [
    "BANK_NORWEGIAN",
    "BERLIN_GROUP",
    "NORDEA",
    "HttpSignatureProfile",
    "RequestSigner",
    "SigningMaterial",
    "b64url",
    "certificate_key_id",
    "detached_jws",
    "digest_header",
    "looks_like_private_key",
    "sign_jwt",
    "signer_for",
    "signing_material",
    "signing_string",
]
