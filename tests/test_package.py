"""The extension package: Blender's validator and builder accept it, layers stay in order."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from conftest import ROOT

PACKAGE = ROOT / "masksplat_blender"

# DESIGN.md "Layers": what each layer must not import.
FORBIDDEN = {
    "core": {"bpy", "bmesh", "mathutils", "gpu", "torch", "gsplat", "transformers", "numba"},
    "backend": {"bpy", "bmesh", "mathutils", "gpu"},
    "client.py": {"bpy", "bmesh", "mathutils", "gpu", "torch", "gsplat", "transformers", "numba"},
    "scene": {"gpu", "torch", "gsplat", "transformers", "numba"},
    "ui": {"torch", "gsplat", "transformers", "numba"},
    "batch.py": {"gpu", "torch", "gsplat", "transformers", "numba"},
    "commands": {"gpu", "torch", "gsplat", "transformers", "numba"},
    "__init__.py": {"bpy", "torch", "gsplat", "transformers", "numba"},
}
# Relative imports that would point upwards.
FORBIDDEN_RELATIVE = {
    "core": {"scene", "ui", "backend", "client", "batch", "commands"},
    "backend": {"scene", "ui", "client", "batch", "commands"},
    "client.py": {"scene", "ui", "backend", "batch", "commands"},
    "scene": {"ui", "backend", "batch", "commands"},
    "ui": {"backend", "batch", "commands"},
    "batch.py": {"ui", "backend"},
    "commands": {"ui", "backend", "batch"},
}


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """Top-level absolute imports and first components of relative imports (module level only for __init__)."""
    tree = ast.parse(path.read_text())
    absolute, relative = set(), set()
    nodes = tree.body if path.name == "__init__.py" and path.parent == PACKAGE else ast.walk(tree)
    for node in nodes:
        if isinstance(node, ast.Import):
            absolute.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level == 0 and node.module:
                absolute.add(node.module.split(".")[0])
            elif node.level >= 1:
                parts = (node.module or "").split(".")
                if node.level == 2 or (node.level == 1 and path.parent == PACKAGE):
                    relative.add(parts[0] if parts[0] else "")
                    relative.update(alias.name for alias in node.names if not parts[0])
    return absolute, relative


def _layer_files(layer: str):
    target = PACKAGE / layer
    return [target] if target.is_file() else sorted(target.rglob("*.py"))


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_imports_point_downwards(layer):
    for path in _layer_files(layer):
        absolute, relative = _imports(path)
        assert not absolute & FORBIDDEN[layer], f"{path.relative_to(ROOT)} imports {absolute & FORBIDDEN[layer]}"
        bad = relative & FORBIDDEN_RELATIVE.get(layer, set())
        assert not bad, f"{path.relative_to(ROOT)} imports upwards: {bad}"


MAX_FUNCTION_LINES = 80  # STYLE.md; compiled numba kernels aside (one loop nest each, split only at a cost)


def _is_compiled_kernel(node) -> bool:
    return any("njit" in ast.unparse(decorator) or "numba.jit" in ast.unparse(decorator) for decorator in node.decorator_list)


def test_no_function_is_over_80_lines():
    long = []
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and not _is_compiled_kernel(node):
                lines = node.end_lineno - node.lineno + 1
                if lines > MAX_FUNCTION_LINES:
                    long.append(f"{path.relative_to(ROOT)}:{node.lineno} {node.name} ({lines} lines)")
    assert not long, long


def test_no_test_module_imports_another_or_a_benchmark():
    """Shared test pieces live in support modules (tests/scenes.py, camera_writers.py,
    headless.py, ...), never in a test module or a benchmark script."""
    wrong = []
    for path in [*(ROOT / "tests").rglob("*.py"), *(ROOT / "benchmarks").glob("*.py"), *(ROOT / ".ci").glob("*.py")]:
        for node in ast.walk(ast.parse(path.read_text())):
            names = [alias.name for alias in node.names] if isinstance(node, ast.Import) else []
            if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            wrong += [f"{path.relative_to(ROOT)} imports {name}" for name in names if name.split(".")[0].startswith(("test_", "bench_"))]
    assert not wrong, wrong


def test_no_shell_or_pickle():
    for path in PACKAGE.rglob("*.py"):
        text = path.read_text()
        for needle in ("shell=True", "allow_pickle=True", "pickle.load", "import pickle"):
            assert needle not in text, f"{path.relative_to(ROOT)} contains {needle}"


def test_package_and_core_import_without_bpy():
    code = (
        "import sys; sys.modules['bpy'] = None\n"
        "import masksplat_blender, masksplat_blender.core.splat_io, masksplat_blender.core.cameras\n"
        "import masksplat_blender.client\n"
        "assert 'bpy' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True)


def test_manifest_contract():
    manifest = tomllib.loads((ROOT / "blender_manifest.toml").read_text())
    assert manifest["schema_version"] == "1.0.0"
    assert manifest["id"] == "masksplat"
    assert manifest["blender_version_min"] == "4.2.0"
    assert manifest["license"] == ["SPDX:GPL-3.0-or-later"]
    for wheel in manifest["wheels"]:
        assert (ROOT / wheel).is_file(), wheel
    assert {"files", "network"} <= set(manifest["permissions"])


def test_built_zip_has_the_extension_layout(extension_zip):
    with zipfile.ZipFile(extension_zip) as archive:
        names = set(archive.namelist())
    assert {"__init__.py", "blender_manifest.toml", "LICENSE", "batch.py"} <= names
    assert any(name.startswith("wheels/plyfile-") for name in names)
    assert any(name.startswith("core/splat_io") for name in names)
    assert not any("__pycache__" in name or name.startswith("tests/") for name in names)


def test_validator_rejects_a_broken_manifest(tmp_path):
    sys.path.insert(0, str(ROOT / ".ci"))
    try:
        import build_extension
    finally:
        sys.path.pop(0)
    staged = build_extension.stage(tmp_path / "masksplat")
    manifest = staged / "blender_manifest.toml"
    manifest.write_text(manifest.read_text().replace('id = "masksplat"', 'id = "mask splat!"'))
    proc = subprocess.run(
        [sys.executable, str(build_extension.find_blender_ext()), "validate", str(staged)],
        capture_output=True,
        text=True,
    )
    assert proc.returncode != 0
