"""What the adapter tests against the TLS test bank share: a PKI for it (module-scoped, one per test
module that asks), one from another CA that it does not trust, and the running bank."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from ledgerlink.testbank.pki import PkiFiles, make_pki
from ledgerlink.testbank.server import running_tls_bank


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    return make_pki(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def rogue(tmp_path_factory: pytest.TempPathFactory) -> PkiFiles:
    """Certificates from another CA, which the test bank does not trust."""
    return make_pki(tmp_path_factory.mktemp("rogue"), organisation="Someone Else")


@pytest.fixture(scope="module")
def bank_url(pki: PkiFiles) -> Iterator[str]:
    with running_tls_bank(pki, decoupled_polls=1) as url:
        yield url
