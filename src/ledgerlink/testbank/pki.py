"""A throw-away PKI for the TLS test bank: a test CA, the bank's server certificate (127.0.0.1 and
localhost), our QWAC (TLS client certificate) and our QSealC (request signing), written as PEM files.

Nothing here is an eIDAS certificate: the CA is made on the spot and trusted only by the test bank
and by the ``CA_BUNDLE_FILE`` setting pointing at it.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

KEY_BITS = 2048


@dataclass(frozen=True, slots=True)
class PkiFiles:
    """Paths of the PEM files in one directory."""

    directory: Path

    def path(self, name: str) -> Path:
        return self.directory / name

    @property
    def ca_cert(self) -> Path:
        return self.path("ca.pem")

    @property
    def server_cert(self) -> Path:
        return self.path("server.pem")

    @property
    def server_key(self) -> Path:
        return self.path("server-key.pem")

    @property
    def qwac_cert(self) -> Path:
        return self.path("qwac.pem")

    @property
    def qwac_key(self) -> Path:
        return self.path("qwac-key.pem")

    @property
    def qseal_cert(self) -> Path:
        return self.path("qseal.pem")

    @property
    def qseal_key(self) -> Path:
        return self.path("qseal-key.pem")


def _name(common_name: str, organisation: str) -> x509.Name:
    return x509.Name(
        [
            x509.NameAttribute(NameOID.COUNTRY_NAME, "SE"),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, organisation),
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
        ]
    )


def _write_key(key: rsa.RSAPrivateKey, path: Path) -> None:
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    path.chmod(0o600)


def _write_cert(cert: x509.Certificate, path: Path) -> None:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))


def _issue(
    subject: x509.Name,
    key: rsa.RSAPrivateKey,
    issuer: x509.Name,
    issuer_key: rsa.RSAPrivateKey,
    extensions: list[tuple[x509.ExtensionType, bool]],
    *,
    days: int,
) -> x509.Certificate:
    now = dt.datetime.now(dt.UTC)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=days))
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def _key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=KEY_BITS)


def make_pki(directory: Path, *, organisation: str = "Ledgerlink Test TPP", days: int = 30) -> PkiFiles:
    """Create a CA and the server, QWAC and QSealC certificates it signs, as PEM files in ``directory``."""
    directory.mkdir(parents=True, exist_ok=True)
    pki = PkiFiles(directory)
    ca_key = _key()
    ca_name = _name(f"{organisation} Test CA", organisation)
    ca = _issue(
        ca_name,
        ca_key,
        ca_name,
        ca_key,
        [(x509.BasicConstraints(ca=True, path_length=0), True)],
        days=days,
    )
    _write_cert(ca, pki.ca_cert)

    leaf = x509.BasicConstraints(ca=False, path_length=None)
    server_key = _key()
    server = _issue(
        _name("127.0.0.1", "Ledgerlink TLS Test Bank"),
        server_key,
        ca_name,
        ca_key,
        [
            (leaf, True),
            (
                x509.SubjectAlternativeName(
                    [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
                ),
                False,
            ),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
        ],
        days=days,
    )
    _write_cert(server, pki.server_cert)
    _write_key(server_key, pki.server_key)

    qwac_key = _key()
    qwac = _issue(
        _name(f"{organisation} QWAC", organisation),
        qwac_key,
        ca_name,
        ca_key,
        [(leaf, True), (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), False)],
        days=days,
    )
    _write_cert(qwac, pki.qwac_cert)
    _write_key(qwac_key, pki.qwac_key)

    qseal_key = _key()
    usage = x509.KeyUsage(
        digital_signature=True,
        content_commitment=True,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )
    qseal = _issue(
        _name(f"{organisation} QSealC", organisation),
        qseal_key,
        ca_name,
        ca_key,
        [(leaf, True), (usage, True)],
        days=days,
    )
    _write_cert(qseal, pki.qseal_cert)
    _write_key(qseal_key, pki.qseal_key)
    return pki


__all__ = ["PkiFiles", "make_pki"]
