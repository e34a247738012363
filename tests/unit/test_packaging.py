"""The distributions a user installs: the provider alone, licensed, typed, its imports declared."""

from __future__ import annotations

import ast
import os
import sys
import tarfile
import zipfile
from importlib import metadata
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "airflow_provider_sei"
#: Imported only where the matching extra is installed (and lazily).
OPTIONAL = {"pyarrow": "parquet", "airflow.providers.openlineage": "openlineage"}
#: Imported only inside ``get_connection_form_widgets``, which only Airflow 3.1's web UI calls,
#: in its own process where Airflow installed them.
UI_ONLY = {"flask_appbuilder", "flask_babel", "wtforms"}


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """The provider's wheel and sdist, built by its own backend (hatchling) without network."""
    from hatchling.build import build_sdist, build_wheel

    out = tmp_path_factory.mktemp("dist")
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        wheel = out / build_wheel(str(out))
        sdist = out / build_sdist(str(out))
    finally:
        os.chdir(cwd)
    return {"wheel": wheel, "sdist": sdist}


def wheel_names(path: Path) -> list[str]:
    with zipfile.ZipFile(path) as archive:
        return archive.namelist()


def sdist_names(path: Path) -> list[str]:
    with tarfile.open(path) as archive:
        return [name.split("/", 1)[1] for name in archive.getnames() if "/" in name]


def test_the_wheel_holds_the_provider_alone(built: dict[str, Path]) -> None:
    names = wheel_names(built["wheel"])
    assert not [n for n in names if "emulator" in n.lower()]
    top_level = {n.split("/", 1)[0] for n in names if not n.startswith("airflow_provider_sei-")}
    assert top_level == {"airflow_provider_sei"}
    assert "airflow_provider_sei/py.typed" in names
    assert "airflow_provider_sei/triggers/exports.py" in names


def test_both_distributions_carry_the_license(built: dict[str, Path]) -> None:
    wheel = wheel_names(built["wheel"])
    for name in ("LICENSE", "NOTICE"):
        assert any(n.endswith(f".dist-info/licenses/{name}") for n in wheel), name
    sdist = sdist_names(built["sdist"])
    assert {"LICENSE", "NOTICE", "CHANGELOG.md", "README.md", "pyproject.toml"} <= set(sdist)
    assert not [n for n in sdist if n.startswith(("emulator/", "tests/"))]
    license_text = (ROOT / "LICENSE").read_text()
    assert "Apache License" in license_text
    assert "Version 2.0" in license_text


def _imported_modules() -> set[str]:
    modules: set[str] = set()
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                modules.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                modules.add(node.module)
    return modules


def test_every_imported_third_party_module_is_declared() -> None:
    requirements = metadata.requires("airflow-provider-sei") or []
    declared = {_requirement_name(r) for r in requirements if "extra ==" not in r}
    extras = {_requirement_name(r) for r in requirements if "extra ==" in r}
    distributions = metadata.packages_distributions()
    missing = []
    for module in sorted(_imported_modules()):
        top = module.split(".")[0]
        if top in sys.stdlib_module_names or top == "airflow_provider_sei" or top in UI_ONLY:
            continue
        optional = next((v for k, v in OPTIONAL.items() if module.startswith(k)), None)
        if module.startswith("airflow.providers."):
            parts = module.split(".")
            names = {f"apache-airflow-providers-{'-'.join(parts[2:4])}",
                     f"apache-airflow-providers-{parts[2]}"}  # fmt: skip
        elif top == "airflow":
            names = {"apache-airflow"}
        else:
            names = {d.lower() for d in distributions.get(top, [top])}
        pool = extras if optional else declared
        if not names & pool and not (top == "airflow" and "apache-airflow" in declared):
            missing.append(module)
    assert not missing, f"imported but not declared: {missing}"


def _requirement_name(requirement: str) -> str:
    name = requirement.split(";")[0].strip()
    for stop in "<>=!~[ (":
        name = name.split(stop)[0]
    return name.lower().replace("_", "-")
