"""Contract tests: what an integrator gets from the committed ``openapi.yaml``.

``generated_client`` runs openapi-python-client on the committed spec (as an integrator would) into a
temporary directory and imports the package it writes; the journeys then use only that package.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
SPEC = ROOT / "openapi.yaml"
PACKAGE = "ledgerlink_generated_client"


@dataclass(frozen=True)
class Generated:
    package: ModuleType
    output: str

    def module(self, name: str) -> ModuleType:
        """A module of the generated package, e.g. ``api.banks.list_banks`` or ``models``."""
        return importlib.import_module(f"{PACKAGE}.{name}")


@pytest.fixture(scope="session")
def generated_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Generated]:
    out = tmp_path_factory.mktemp("generated-client")
    bin_dir = Path(sys.executable).parent
    env = {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(
        [
            str(bin_dir / "openapi-python-client"),
            "generate",
            "--path",
            str(SPEC),
            "--output-path",
            str(out / PACKAGE),
            "--meta",
            "none",
        ],
        env=env,
        cwd=out,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    sys.path.insert(0, str(out))
    try:
        yield Generated(importlib.import_module(PACKAGE), output)
    finally:
        sys.path.remove(str(out))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(f"{PACKAGE}.")]:
            del sys.modules[name]
