"""Every splat format through the installed add-on's real operators and the batch entry point:
one kind of splat object whatever the file, lossless PLY export of what was decoded, the loss
of a lossy export said once, and bad files leaving the scene as it was."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
from headless import run_batch
from synthetic import tiny_sog

from masksplat_blender.core.splat_io import inria_dtype, read_splats, write_splats

SAMPLE = Path(__file__).resolve().parent / "data" / "fruit_drops" / "fruit_drops_minimal.ply"


@pytest.fixture(scope="module")
def files(tmp_path_factory, webp):
    """The SH3 sample as .spz and .compressed.ply (our writers) and a hand-made SOG bundle."""
    folder = tmp_path_factory.mktemp("formats")
    data = read_splats(SAMPLE)
    write_splats(folder / "fruit.spz", data)
    write_splats(folder / "fruit.compressed.ply", data)
    (folder / "tiny").mkdir()
    tiny_sog(folder / "tiny", webp[0])
    with zipfile.ZipFile(folder / "tiny.sog", "w") as bundle:
        for file in sorted((folder / "tiny").iterdir()):
            bundle.write(file, file.name)
    return {"spz": folder / "fruit.spz", "compressed": folder / "fruit.compressed.ply", "sog": folder / "tiny.sog"}


def _import(bpy, path):
    assert bpy.ops.masksplat.import_splats(filepath=str(path)) == {"FINISHED"}
    return bpy.context.active_object


@pytest.mark.parametrize("fmt", ["spz", "compressed", "sog"])
def test_import_is_an_inria_splat_object_and_exports_losslessly_to_ply(blend, files, webp, tmp_path, fmt):
    decoded = read_splats(files[fmt], decode_webp=webp[1])
    obj = _import(blend, files[fmt])
    assert obj.name == {"spz": "fruit", "compressed": "fruit", "sog": "tiny"}[fmt]
    assert obj.masksplat.sh_degree == decoded.sh_degree
    names = inria_dtype(decoded.sh_degree, normals=False).names
    assert {n for n in names if n not in "xyz"} <= set(obj.data.attributes.keys())
    assert blend.ops.masksplat.export_splats(filepath=str(tmp_path / "out.ply")) == {"FINISHED"}
    written = read_splats(tmp_path / "out.ply")
    assert written.vertices.dtype.names == names
    assert written.vertices.tobytes() == decoded.vertices.tobytes()


def test_lossy_export_says_its_loss_once_and_keeps_what_it_can(blend, files, tmp_path, capfd):
    obj = _import(blend, SAMPLE)
    capfd.readouterr()
    assert blend.ops.masksplat.export_splats(filepath=str(tmp_path / "o.spz")) == {"FINISHED"}
    out = capfd.readouterr().out
    assert out.count("Niantic SPZ: positions become 24-bit fixed point") == 1
    assert "other 4 properties (nx, ny, nz, transform)" in out
    assert read_splats(tmp_path / "o.spz").vertices.tobytes() == read_splats(files["spz"]).vertices.tobytes()
    with pytest.raises(RuntimeError, match="has no place for labels"):
        blend.ops.masksplat.export_splats(filepath=str(tmp_path / "l.spz"), label_property=True)
    keep = np.arange(len(obj.data.vertices)) % 3 == 0
    obj.data.vertices.foreach_set("select", keep)
    assert blend.ops.masksplat.export_splats(filepath=str(tmp_path / "s.compressed.ply"), gaussians="SELECTED") == {"FINISHED"}
    assert read_splats(tmp_path / "s.compressed.ply").count == keep.sum()


def test_moved_object_is_baked_into_spz(blend, tmp_path):
    obj = _import(blend, SAMPLE)
    obj.location = (1.0, -2.0, 0.5)
    assert blend.ops.masksplat.export_splats(filepath=str(tmp_path / "moved.spz")) == {"FINISHED"}
    moved, source = read_splats(tmp_path / "moved.spz"), read_splats(SAMPLE)
    assert np.abs(moved.means() - (source.means() + [1.0, -2.0, 0.5])).max() <= 0.5 / 4096 + 1e-6


@pytest.mark.parametrize("case", ["truncated spz", "sog without meta.json", "unknown content"])
def test_bad_files_leave_the_scene_unchanged(blend, files, tmp_path, case):
    path = {"truncated spz": tmp_path / "cut.spz", "sog without meta.json": tmp_path / "bare.sog",
            "unknown content": tmp_path / "notes.txt"}[case]  # fmt: skip
    if case == "truncated spz":
        path.write_bytes(files["spz"].read_bytes()[:5000])
    elif case == "sog without meta.json":
        with zipfile.ZipFile(path, "w") as bundle:
            bundle.writestr("means_l.webp", b"RIFF")
    else:
        path.write_text("hello")
    before = (len(blend.data.objects), len(blend.data.meshes), len(blend.data.images))
    with pytest.raises(RuntimeError) as err:
        blend.ops.masksplat.import_splats(filepath=str(path))
    assert path.name in str(err.value) and "Traceback" not in str(err.value)
    assert (len(blend.data.objects), len(blend.data.meshes), len(blend.data.images)) == before


def test_export_file_name_keeps_a_typed_format_and_adds_the_chosen_one(installed_addon):
    name = installed_addon.ui.io_ops.export_file_name
    assert name("/a/scene.spz", "PLY") == "/a/scene.spz"
    assert name("/a/scene.compressed.ply", "SPZ") == "/a/scene.compressed.ply"
    assert name("/a/scene", "COMPRESSED_PLY") == "/a/scene.compressed.ply"
    assert name("/a/scene.sog", "SPZ") == "/a/scene.sog.spz"  # SOG is read, not written


def test_batch_convert_writes_the_format_of_the_output_name(files, tmp_path):
    out = tmp_path / "plant.compressed.ply"
    proc = run_batch("convert", "--ply", files["spz"], "--out", out)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert proc.stdout.count("PlayCanvas compressed PLY: positions and log-scales") == 1
    assert read_splats(out).count == 4721
    (tmp_path / "bad.spz").write_bytes(files["spz"].read_bytes()[:100])
    proc = run_batch("convert", "--ply", tmp_path / "bad.spz", "--out", tmp_path / "x.ply")
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("masksplat: bad.spz: truncated")
    assert not (tmp_path / "x.ply").exists()
