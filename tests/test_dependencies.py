"""Every third-party package ``src/`` imports is a declared runtime dependency, and the package imports
whole with the runtime dependencies alone (``pip install .`` without extras, in a fresh venv)."""

from __future__ import annotations

import ast
import importlib.metadata
import re
import subprocess
import sys
import sysconfig

import pytest

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from tests.conftest import PROJECT_ROOT

SRC = PROJECT_ROOT / "src" / "vans_pipelines"


def imported_top_levels() -> dict[str, set[str]]:
    """Top-level module names imported anywhere under src/ → the files importing them."""
    found: dict[str, set[str]] = {}
    for path in SRC.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            for name in names:
                found.setdefault(name.split(".")[0], set()).add(str(path.relative_to(PROJECT_ROOT)))
    return found


def declared_runtime() -> set[str]:
    project = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]
    names = {re.split(r"[\[<>=!~; ]", spec, maxsplit=1)[0] for spec in project["dependencies"]}
    return {canonical(n) for n in names}


def canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def test_every_imported_package_is_a_declared_runtime_dependency():
    distributions = importlib.metadata.packages_distributions()
    declared = declared_runtime()
    undeclared = {}
    for module, files in imported_top_levels().items():
        if module == "vans_pipelines" or module in sys.stdlib_module_names or module == "__future__":
            continue
        owners = {canonical(d) for d in distributions.get(module, [])}
        assert owners, f"{module} (imported by {sorted(files)}) belongs to no installed distribution"
        if not owners & declared:
            undeclared[module] = (sorted(owners), sorted(files))
    assert not undeclared, f"imported by src/ but not in [project.dependencies]: {undeclared}"


@pytest.mark.slow
def test_the_package_imports_with_runtime_dependencies_only(tmp_path):
    """A fresh venv, the Makefile's torch wheel, then ``pip install .`` without extras: every module of
    the package imports (dev extras such as pytest or scikit-video must not be needed)."""
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    torch_spec = f"torch=={importlib.metadata.version('torch')}"
    for args in ([torch_spec], [str(PROJECT_ROOT)]):
        result = subprocess.run(
            [python, "-m", "pip", "install", "--quiet", *args], capture_output=True, text=True, timeout=1200
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    script = (
        "import importlib, pkgutil, vans_pipelines\n"
        "names = [m.name for m in pkgutil.walk_packages(vans_pipelines.__path__, 'vans_pipelines.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "import importlib.util as u\n"
        "assert u.find_spec('pytest') is None and u.find_spec('skvideo') is None, 'dev extras leaked in'\n"
        "print(len(names))\n"
    )
    result = subprocess.run([python, "-c", script], capture_output=True, text=True, timeout=600, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    assert int(result.stdout.split()[-1]) > 40


def test_the_environment_is_the_one_constraints_txt_pins():
    """`make run` / `make test` install with ``-c constraints.txt``: every installed distribution (torch and
    its CUDA wheels aside, which TORCH_SPEC chooses) is pinned there, at the version installed. A new
    dependency without `make lock` fails here."""
    pins = {}
    for line in (PROJECT_ROOT / "constraints.txt").read_text().splitlines():
        if line and not line.startswith("#"):
            name, version = line.split("==")
            pins[canonical(name)] = version
    unpinned, moved = [], []
    # What is installed in the environment, not all of sys.path: setuptools puts its vendored packages on
    # sys.path once imported (torch.compile's C++ build does), and those are not the environment's.
    site_packages = list(dict.fromkeys(sysconfig.get_paths()[key] for key in ("purelib", "platlib")))
    for dist in importlib.metadata.distributions(path=site_packages):
        name = canonical(dist.metadata["Name"])
        if name in ("vans-pipelines", "pip", "setuptools", "wheel", "torch", "triton") or name.startswith(
            "nvidia-"
        ):
            continue
        if name not in pins:
            unpinned.append(name)
        elif pins[name] != dist.version:
            moved.append(f"{name} {dist.version} (pinned {pins[name]})")
    assert not unpinned and not moved, f"not pinned: {unpinned}; other version: {moved} (run `make lock`)"
    makefile = (PROJECT_ROOT / "Makefile").read_text()
    assert '-c $(CONSTRAINTS) -e ".[dev]"' in makefile
