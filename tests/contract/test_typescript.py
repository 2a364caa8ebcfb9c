"""Frontends write TypeScript: types generated from the committed spec with openapi-typescript (pinned in
``ts/package-lock.json``) type-check a journey module (``ts/journey.ts``) with tsc."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from tests.contract.conftest import SPEC

TS = Path(__file__).resolve().parent / "ts"
NODE, NPM = shutil.which("node"), shutil.which("npm")

pytestmark = pytest.mark.skipif(
    NODE is None or NPM is None, reason="node and npm are not installed: the TypeScript check needs them"
)


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), cwd=cwd, capture_output=True, text=True, timeout=300, check=False)


@pytest.fixture(scope="module")
def project(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The pinned TypeScript project, installed from its lock file into a temp dir."""
    work = tmp_path_factory.mktemp("ts")
    for name in ("package.json", "package-lock.json", "tsconfig.json", "journey.ts"):
        shutil.copy(TS / name, work / name)
    assert NPM is not None
    installed = _run(NPM, "ci", "--no-audit", "--no-fund", "--loglevel=error", cwd=work)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    return work


def _typecheck(project: Path, spec: Path) -> subprocess.CompletedProcess[str]:
    (project / "generated").mkdir(exist_ok=True)
    bin_dir = project / "node_modules" / ".bin"
    generated = _run(
        str(bin_dir / "openapi-typescript"), str(spec), "--output", "generated/ledgerlink.d.ts", cwd=project
    )
    assert generated.returncode == 0, generated.stdout + generated.stderr
    return _run(str(bin_dir / "tsc"), "--noEmit", "-p", "tsconfig.json", cwd=project)


def test_the_journey_module_type_checks_against_types_from_the_committed_spec(project: Path) -> None:
    checked = _typecheck(project, SPEC)
    assert checked.returncode == 0, checked.stdout + checked.stderr


def test_the_check_fails_when_the_spec_drifts(project: Path, tmp_path: Path) -> None:
    """The same module against a spec whose specifications are a bare array again: tsc refuses it."""
    spec = yaml.safe_load(SPEC.read_text(encoding="utf-8"))
    operation = spec["paths"]["/v1/closings/{closing_id}/specifications"]["get"]
    operation["responses"]["200"]["content"]["application/json"]["schema"] = {
        "type": "array",
        "items": {"$ref": "#/components/schemas/SpecificationOut"},
    }
    drifted = tmp_path / "drifted.yaml"
    drifted.write_text(yaml.safe_dump(spec, sort_keys=False), encoding="utf-8")
    checked = _typecheck(project, drifted)
    assert checked.returncode != 0
    assert "journey.ts" in checked.stdout and "items" in checked.stdout
