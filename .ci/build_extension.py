"""Stage the add-on and build the installable extension zip with Blender's own tool.

Blender wants `__init__.py` beside `blender_manifest.toml`, so the package folder, the
manifest, `wheels/` and `LICENSE` are staged into one folder, validated, then built with
`blender_ext.py` (shipped inside the `bpy` wheel; it runs under plain Python).

    python .ci/build_extension.py            # -> dist/masksplat-<version>.zip
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = ROOT / "masksplat_blender"


def find_blender_ext() -> Path:
    """Blender's extension CLI, from the bpy wheel of the running Python."""
    import importlib.util

    spec = importlib.util.find_spec("bpy")
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit("bpy is not installed in this Python: pip install bpy==5.0.1 'numpy<2'")
    base = Path(next(iter(spec.submodule_search_locations)))
    found = sorted(base.glob("*/scripts/addons_core/bl_pkg/cli/blender_ext.py"))
    if not found:
        raise SystemExit(f"blender_ext.py not found under {base}")
    return found[-1]


def stage(dest: Path) -> Path:
    """Copy what the extension ships into `dest`, laid out as Blender expects."""
    if dest.exists():
        shutil.rmtree(dest)
    shutil.copytree(PACKAGE, dest, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
    shutil.copy2(ROOT / "blender_manifest.toml", dest / "blender_manifest.toml")
    shutil.copy2(ROOT / "LICENSE", dest / "LICENSE")
    shutil.copytree(ROOT / "wheels", dest / "wheels")
    return dest


def build(out_dir: Path | None = None) -> Path:
    """Validate and build; returns the zip's path."""
    out_dir = Path(out_dir or ROOT / "dist")
    out_dir.mkdir(parents=True, exist_ok=True)
    staged = stage(ROOT / "build" / "masksplat")
    tool = find_blender_ext()
    for args in (["validate", str(staged)], ["build", "--source-dir", str(staged), "--output-dir", str(out_dir)]):
        if subprocess.run([sys.executable, str(tool), *args]).returncode != 0:
            raise SystemExit(f"Blender's extension tool refused the package ({args[0]}); see its message above")
    zips = sorted(out_dir.glob("masksplat-*.zip"), key=lambda p: p.stat().st_mtime)
    if not zips:
        raise SystemExit(f"Blender's builder wrote no zip into {out_dir}")
    return zips[-1]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out-dir", type=Path, default=None, help="where the zip goes (default: dist/)")
    args = parser.parse_args(argv)
    print(build(args.out_dir))
    return 0


if __name__ == "__main__":
    sys.exit(main())
