"""Shared test set-up.

Blender's user folders point at a throw-away directory before anything imports `bpy`,
so an add-on installed on this machine never shadows the one under test, and the add-on
tests run the extension zip built by Blender's own tool and installed by Blender's own
extension system (`installed_addon`).
"""

from __future__ import annotations

import importlib
import os
import sys
import tempfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("MASKSPLAT_DATA", ROOT.parent / "shared" / "data"))

if "bpy" not in sys.modules:
    _USER = tempfile.mkdtemp(prefix="masksplat-blender-user-")
    os.environ["BLENDER_USER_RESOURCES"] = _USER


def data_file(relative: str) -> Path:
    """A file from ../shared/data, or skip the test saying why."""
    path = DATA_DIR / relative
    if not path.exists():
        pytest.skip(f"real splat data not found: {path} (../shared/data is absent on this machine)")
    return path


@pytest.fixture(scope="session")
def extension_zip(tmp_path_factory) -> Path:
    """The extension zip, validated and built by Blender's own extension tool."""
    sys.path.insert(0, str(ROOT / ".ci"))
    try:
        build_extension = importlib.import_module("build_extension")
    finally:
        sys.path.pop(0)
    return build_extension.build(tmp_path_factory.mktemp("dist"))


@pytest.fixture(scope="session")
def installed_addon(extension_zip):
    """Install the built zip into the throw-away user folder, enable it, return its package.

    Everything the add-on tests run comes from this installed copy, not from the checkout.
    """
    bpy = pytest.importorskip("bpy")
    result = bpy.ops.extensions.package_install_files(
        filepath=str(extension_zip), repo="user_default", enable_on_install=True
    )
    assert result == {"FINISHED"}, result
    package = importlib.import_module("bl_ext.user_default.masksplat")
    assert Path(package.__file__).resolve().is_relative_to(Path(os.environ["BLENDER_USER_RESOURCES"]).resolve())
    assert hasattr(bpy.types.Object, "masksplat")
    return package


@pytest.fixture
def blend(installed_addon):
    """An empty Blender file with the add-on enabled; yields bpy."""
    import bpy

    bpy.ops.wm.read_homefile(use_empty=True)
    yield bpy
    bpy.ops.wm.read_homefile(use_empty=True)


@pytest.fixture(scope="module")
def client():
    """A warm CPU backend process shared by a test module (the real subprocess)."""
    from masksplat_blender.client import BackendClient

    c = BackendClient(sys.executable, device="cpu", idle_timeout=300)
    yield c
    c.close()


@pytest.fixture(scope="session")
def webp():
    """(encode(pixels [H, W, 4] uint8, path, lossless), decode) with Blender's image code."""
    pytest.importorskip("bpy")
    from synthetic import encode_webp

    from masksplat_blender.scene.images import decode_webp

    return encode_webp, decode_webp
