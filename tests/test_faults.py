"""Every promise holds under faults: real batch subprocesses and the real backend, provoked.

Each case asserts the promise, not just the exit code: exactly one line on stderr
(`masksplat: ...`, no traceback), every input byte-identical afterwards, and no stray
file in the output folder or in the temporary folder (each run gets its own TMPDIR).
Signals are sent in a known state, never after a fixed sleep: the process is stopped
(SIGSTOP), the state is checked from outside (/proc: a file mapped, a temporary present),
and only then is the signal sent, so it lands exactly there once the process continues.
"""

from __future__ import annotations

import hashlib
import json
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
import venv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from camera_writers import save_cameras_json
from conftest import ROOT
from scenes import SAMPLE, fruit_cameras, fruit_labels, label_masks

from masksplat_blender.core.images import write_png
from masksplat_blender.core.splat_io import SplatData, inria_dtype, read_splats, write_ply

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="uses /proc, SIGSTOP and RLIMIT_FSIZE (Linux)")

DEADLINE = 300  # seconds; only bounds a hang


# ---------------------------------------------------------------- running the batch


@dataclass
class Result:
    returncode: int
    stdout: str
    stderr: str


def _env(tmp: Path, extra: dict | None = None) -> dict:
    temp = tmp / "temp"
    temp.mkdir(exist_ok=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(temp), "BLENDER_USER_RESOURCES": str(tmp / "blender-user")}
    env.pop(("MASKSPLAT_BACKEND_PYTHON"), None)
    return {**env, **(extra or {})}


def start(tmp: Path, *args, env: dict | None = None, file_size_limit: int | None = None) -> subprocess.Popen:
    """`python -m masksplat_blender.batch ARGS` in its own TMPDIR (tmp/temp)."""

    def limit():
        if file_size_limit is not None:
            resource.setrlimit(resource.RLIMIT_FSIZE, (file_size_limit, file_size_limit))

    return subprocess.Popen(
        [sys.executable, "-m", "masksplat_blender.batch", *map(str, args)], cwd=tmp, env=_env(tmp, env),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, preexec_fn=limit,
    )  # fmt: skip


def finish(proc: subprocess.Popen) -> Result:
    out, err = proc.communicate(timeout=DEADLINE)
    return Result(proc.returncode, out, err)


def batch(tmp: Path, *args, **kwargs) -> Result:
    return finish(start(tmp, *args, **kwargs))


def one_line(result: Result, code: int, *needles: str) -> str:
    """The promise for a failure: this exit code, one line on stderr, no traceback."""
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, f"exit {result.returncode}, expected {code}:\n{result.stderr[-3000:]}"
    assert len(lines) == 1 and lines[0].startswith("masksplat: "), result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    for needle in needles:
        assert needle in lines[0], lines[0]
    return lines[0]


def digest(*paths) -> dict:
    """Every file under `paths` -> a hash of its bytes (to prove inputs unchanged)."""
    out = {}
    for path in map(Path, paths):
        for file in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
            out[str(file)] = hashlib.blake2b(file.read_bytes(), digest_size=16).hexdigest()
    return out


def clean(tmp: Path, folder: Path, expected=()) -> None:
    """Nothing stray: the temporary folder is empty and `folder` holds exactly `expected`."""
    assert sorted(os.listdir(tmp / "temp")) == [], os.listdir(tmp / "temp")
    assert sorted(os.listdir(folder)) == sorted(expected), os.listdir(folder)


# ---------------------------------------------------------------- signals in a known state


def _stopped(pid: int) -> bool:
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] in ("T", "t")


def signal_when(proc: subprocess.Popen, condition, sig) -> None:
    """Send `sig` at a moment when condition() holds: checked with the process stopped, so
    the signal is taken in that very state when it continues."""
    deadline = time.monotonic() + DEADLINE
    while True:
        assert proc.poll() is None, f"the command ended first: {proc.communicate()[1][-2000:]}"
        assert time.monotonic() < deadline, "the state never came"
        os.kill(proc.pid, signal.SIGSTOP)
        try:
            while not _stopped(proc.pid):
                time.sleep(0.0005)
            if condition():
                os.kill(proc.pid, sig)
                return
        finally:
            os.kill(proc.pid, signal.SIGCONT)
        time.sleep(0.003)


def mapped(proc: subprocess.Popen, needle: str) -> bool:
    return needle in Path(f"/proc/{proc.pid}/maps").read_text()


def backend_child(proc: subprocess.Popen) -> int | None:
    """The pid of the batch's backend process, if it runs."""
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                command = (entry / "cmdline").read_bytes()
            except (OSError, IndexError, ValueError):
                continue
            if ppid == proc.pid and b"backend" in command:
                return int(entry.name)
    return None


# ---------------------------------------------------------------- the scene


@pytest.fixture(scope="module")
def scene(tmp_path_factory, client):
    """The bundled sample with 4 cameras whose images sit in a folder (images/view_000.png), and
    masks of one letter group, all background, soft (127: just under one half) and all foreground,
    named view_000.png."""
    folder = tmp_path_factory.mktemp("scene")
    shutil.copy(SAMPLE, folder / "scene.ply")
    cams = fruit_cameras(4, size=48)
    save_cameras_json(folder / "cameras.json", cams)
    entries = json.loads((folder / "cameras.json").read_text())
    for entry in entries:
        entry["img_name"] = f"images/{entry['img_name']}.png"
    (folder / "cameras.json").write_text(json.dumps(entries))
    object_masks = label_masks(cams, fruit_labels() == 4, client=client)
    for kind, value in (("masks", None), ("masks_bg", 0), ("masks_soft", 127), ("masks_fg", 255)):
        (folder / kind).mkdir()
        for cam, mask in zip(cams, object_masks, strict=True):
            write_png(folder / kind / f"{cam.name}.png", mask if value is None else np.full_like(mask, value))
    return folder


def segment_args(scene: Path, masks: str = "masks") -> list:
    return ["segment", "--ply", scene / "scene.ply", "--cameras", scene / "cameras.json", "--masks", scene / masks, "--device", "cpu"]


@pytest.fixture(scope="module")
def million(tmp_path_factory) -> Path:
    """A 1M-Gaussian SH3 file (248 MB), for Ctrl-C in the middle of an import or an export."""
    path = tmp_path_factory.mktemp("million") / "million.ply"
    n = 1_000_000
    vertices = np.zeros(n, inria_dtype(3))
    flat = vertices.view(np.float32).reshape(n, -1)
    flat[:] = np.random.default_rng(0).standard_normal(flat.shape, dtype=np.float32)
    write_ply(path, SplatData(vertices, 3))
    return path


# ---------------------------------------------------------------- outputs: never an input, --overwrite, set


def test_summary_never_replaces_an_input_and_needs_overwrite(scene, tmp_path):
    inputs = digest(scene)
    copy = tmp_path / "in.ply"
    shutil.copy(SAMPLE, copy)
    one_line(batch(tmp_path, "convert", "--ply", copy, "--out", tmp_path / "o.ply", "--summary", copy), 2, "also an input")
    one_line(batch(tmp_path, *segment_args(scene), "--out", tmp_path / "o.ply", "--summary", scene / "cameras.json", "--overwrite"),
             2, "--summary", "also an input")  # fmt: skip
    (tmp_path / "s.json").write_text("keep")
    one_line(batch(tmp_path, "convert", "--ply", copy, "--out", tmp_path / "o.ply", "--summary", tmp_path / "s.json"), 2, "--overwrite")
    one_line(batch(tmp_path, "convert", "--ply", copy, "--out", tmp_path / "o.ply", "--summary", tmp_path / "o.ply"), 2, "the same file")
    one_line(batch(tmp_path, "convert", "--ply", copy, "--out", tmp_path / "o.ply", "--summary", tmp_path / "no" / "s.json"),
             2, "does not exist")  # fmt: skip
    assert copy.read_bytes() == SAMPLE.read_bytes() and (tmp_path / "s.json").read_text() == "keep"
    assert digest(scene) == inputs
    clean(tmp_path, tmp_path, ["in.ply", "s.json", "temp"])


def test_paths_a_user_mixes_up(scene, tmp_path):
    copy = tmp_path / "in.ply"
    shutil.copy(SAMPLE, copy)
    (tmp_path / "folder").mkdir()
    (tmp_path / "link.ply").symlink_to(copy)
    os.link(copy, tmp_path / "hard.ply")
    one_line(batch(tmp_path, "convert", "--ply", copy, "--out", tmp_path / "folder"), 2, "is a folder; give a file name")
    one_line(batch(tmp_path, "convert", "--ply", tmp_path / "folder", "--out", tmp_path / "o.ply"), 2, "is a folder; give a file")
    for alias in (tmp_path / "folder" / ".." / "in.ply", tmp_path / "link.ply", tmp_path / "hard.ply"):
        one_line(batch(tmp_path, "convert", "--ply", copy, "--out", alias, "--overwrite"), 2, "also an input")
    one_line(batch(tmp_path, "render", "--ply", copy, "--cameras", scene / "cameras.json", "--out", copy), 2, "is not a folder")
    assert copy.read_bytes() == SAMPLE.read_bytes()
    clean(tmp_path, tmp_path, ["in.ply", "folder", "link.ply", "hard.ply", "temp"])
    assert os.listdir(tmp_path / "folder") == []


def test_segment_writes_its_outputs_as_a_set(scene, tmp_path):
    inputs = digest(scene)
    out = tmp_path / "out"
    out.mkdir()
    names = {"--out": "OBJECT.ply", "--rest": "REST.ply", "--votes": "votes.bin", "--save-blend": "s.blend", "--summary": "s.json"}
    outputs = [a for flag, name in names.items() for a in (flag, out / name)]
    good = batch(tmp_path, *segment_args(scene), *outputs)  # images/view_000.png finds masks/view_000.png
    assert good.returncode == 0, good.stderr[-3000:]
    clean(tmp_path, out, names.values())
    with np.load(out / "votes.bin", allow_pickle=False) as npz:  # exactly the name given, no .npz added
        assert sorted(npz.files) == ["bg", "fg"] and npz["fg"].shape == (read_splats(SAMPLE).count,)
    before = digest(out)
    for masks, message in (("masks_fg", "every Gaussian was selected"), ("masks_bg", "no Gaussian was selected"),
                           ("masks_soft", "no Gaussian was selected")):  # fmt: skip
        one_line(batch(tmp_path, *segment_args(scene, masks), *outputs, "--overwrite"), 1, message)
        assert digest(out) == before  # the earlier set, whole: not a new OBJECT.ply beside an old REST.ply
        clean(tmp_path, out, names.values())
    assert digest(scene) == inputs


def test_jobs_are_checked_as_one_set_before_any_runs(scene, tmp_path):
    job = {"ply": str(scene / "scene.ply"), "cameras": str(scene / "cameras.json"), "masks": str(scene / "masks")}
    for second, needles in (({"out": str(tmp_path / "a.ply")}, ["job 0: --out and job 1: --out name the same file"]),
                            ({"out": str(scene / "scene.ply")}, ["job 1: --out", "also an input"]),
                            ({"out": str(tmp_path / "b.ply"), "beta": -1}, ["job 1: --beta must be from 0 to 2"])):  # fmt: skip
        (tmp_path / "jobs.json").write_text(json.dumps([{**job, "out": str(tmp_path / "a.ply")}, {**job, **second}]))
        one_line(batch(tmp_path, "segment", "--jobs", tmp_path / "jobs.json", "--device", "cpu"), 2, *needles)
    clean(tmp_path, tmp_path, ["jobs.json", "temp"])


def test_two_runs_racing_for_one_new_output(tmp_path):
    procs = [start(tmp_path, "convert", "--ply", SAMPLE, "--out", tmp_path / "o.ply") for _ in range(2)]
    results = sorted((finish(p) for p in procs), key=lambda r: r.returncode)
    assert [r.returncode for r in results] == [0, 2], [r.stderr for r in results]
    one_line(results[1], 2, "--overwrite")  # it existed when checked, or appeared while the loser ran
    assert read_splats(tmp_path / "o.ply").vertices.tobytes() == read_splats(SAMPLE).vertices.tobytes()
    clean(tmp_path, tmp_path, ["o.ply", "temp"])


# ---------------------------------------------------------------- exit codes: failure, bad input, cancel


def test_disk_full_is_a_failure_not_a_cancel(scene, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    full = batch(tmp_path, *segment_args(scene), "--out", out / "o.ply", file_size_limit=40 * 1024)  # the request no longer fits
    one_line(full, 1, "is the disk full?")
    full = batch(tmp_path, "convert", "--ply", SAMPLE, "--out", out / "o.ply", file_size_limit=SAMPLE.stat().st_size - 4096)
    one_line(full, 1, "cannot write --out", "is the disk full?")
    clean(tmp_path, out)


def test_an_unusable_backend_python_is_a_failure(scene, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    unreadable = tmp_path / "python"
    unreadable.write_text("")
    unreadable.chmod(0)
    one_line(batch(tmp_path, *segment_args(scene), "--out", out / "o.ply", "--backend-python", unreadable), 1, "cannot be run", "--backend-python")
    bare = tmp_path / "bare"
    venv.EnvBuilder(with_pip=False).create(bare)
    one_line(batch(tmp_path, *segment_args(scene), "--out", out / "o.ply", "--backend-python", bare / "bin" / "python"), 1, "has no", "torch")
    silent = tmp_path / "silent-python"
    silent.write_text(f"#!{sys.executable}\nimport sys\nsys.stdin.read()\n")  # starts, never says it is ready
    silent.chmod(0o755)
    never = batch(tmp_path, *segment_args(scene), "--out", out / "o.ply", "--backend-python", silent,
                  env={"MASKSPLAT_BACKEND_START_TIMEOUT": "3"})  # fmt: skip
    one_line(never, 1, "did not start within 3 s")
    clean(tmp_path, out)


def test_a_backend_killed_mid_run(scene, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    proc = start(tmp_path, *segment_args(scene), "--out", out / "o.ply")
    deadline = time.monotonic() + DEADLINE
    while (pid := backend_child(proc)) is None or not any((tmp_path / "temp").glob("masksplat-request-*")):
        assert proc.poll() is None and time.monotonic() < deadline, "the backend never ran"
        time.sleep(0.01)
    os.kill(pid, signal.SIGKILL)
    one_line(finish(proc), 1, "killed")
    clean(tmp_path, out)


@pytest.mark.parametrize(("sig", "message"), [(signal.SIGTERM, "cancelled (terminated)"), (signal.SIGINT, "cancelled")])
def test_a_cancel_while_the_backend_starts_removes_the_request_folder(scene, tmp_path, sig, message):
    """The request folder (a copy of the scene) is written before the backend starts: a cancel
    from then on, through the backend's start, removes it and stops the backend."""
    inputs = digest(scene)
    out = tmp_path / "out"
    out.mkdir()
    proc = start(tmp_path, *segment_args(scene), "--out", out / "o.ply", "--votes", out / "v.npz")
    signal_when(proc, lambda: any((tmp_path / "temp").glob("masksplat-request-*")), sig)
    backend = backend_child(proc)
    one_line(finish(proc), 130, message)
    clean(tmp_path, out)
    if backend is not None:
        with pytest.raises(ProcessLookupError):
            os.kill(backend, 0)  # stopped (and reaped), not left running
    assert digest(scene) == inputs


@pytest.mark.parametrize("when", ["import", "export"])
def test_ctrl_c_during_a_large_convert(million, tmp_path, when):
    out = tmp_path / "out"
    out.mkdir()
    before = million.stat()
    proc = start(tmp_path, "convert", "--ply", million, "--out", out / "o.ply")
    if when == "import":  # the file is mapped from the moment it is read until the object is made
        signal_when(proc, lambda: mapped(proc, str(million)), signal.SIGINT)
    else:  # the exporter's own temporary exists only while it writes
        signal_when(proc, lambda: any(p.name.endswith(".tmp") for p in out.iterdir()), signal.SIGINT)
    one_line(finish(proc), 130, "cancelled")
    clean(tmp_path, out)
    after = million.stat()
    assert (after.st_size, after.st_mtime_ns) == (before.st_size, before.st_mtime_ns)


def test_ctrl_c_while_bpy_loads(tmp_path):
    proc = start(tmp_path, "convert", "--ply", SAMPLE, "--out", tmp_path / "o.ply")
    signal_when(proc, lambda: mapped(proc, "bpy/__init__"), signal.SIGINT)
    one_line(finish(proc), 130, "cancelled")  # not a crash (-11)
    clean(tmp_path, tmp_path, ["temp"])


def test_a_huge_camera_is_bad_input_and_creates_nothing(scene, tmp_path):
    entries = json.loads((scene / "cameras.json").read_text())
    entries[0].update(width=10**6, height=10**6, fx=1e6, fy=1e6, cx=5e5, cy=5e5)
    (tmp_path / "cameras.json").write_text(json.dumps(entries))
    one_line(batch(tmp_path, "render", "--ply", SAMPLE, "--cameras", tmp_path / "cameras.json", "--out", tmp_path / "renders"),
             2, "1000000x1000000", "at most 16384")  # fmt: skip
    clean(tmp_path, tmp_path, ["cameras.json", "temp"])


# ---------------------------------------------------------------- one clear line for each input problem


def _edited_ply(path: Path, change) -> Path:
    data = read_splats(SAMPLE)
    data.vertices = np.array(data.vertices)
    change(data.vertices)
    write_ply(path, data)
    return path


def test_bad_values_are_refused_with_their_cause(scene, tmp_path):
    def zero(v):
        for i in range(4):
            v[f"rot_{i}"] = 0.0

    flat = _edited_ply(tmp_path / "flat.ply", zero)
    one_line(batch(tmp_path, *segment_args(scene)[:2], flat, *segment_args(scene)[3:], "--out", tmp_path / "o.ply"),
             2, "4,721 Gaussians have a zero rotation")  # fmt: skip
    for flag, value, needle in (("--beta", "nan", "--beta must be a finite number"), ("--beta", "3", "--beta must be from 0 to 2"),
                                ("--edge-band", "-1", "--edge-band must be from 0 to 16")):  # fmt: skip
        one_line(batch(tmp_path, *segment_args(scene), "--out", tmp_path / "o.ply", flag, value), 2, needle)
    one_line(batch(tmp_path, "render", "--ply", SAMPLE, "--cameras", scene / "cameras.json", "--out", tmp_path / "r",
                   "--background", "nan", "0", "0"), 2, "--background must be a finite number")  # fmt: skip
    one_line(batch(tmp_path, "affordance", "--ply", SAMPLE, "--cameras", scene / "cameras.json", "--source-image", SAMPLE,
                   "--source-labels", SAMPLE, "--model", "rgb-patches", "--labels-npz", tmp_path / "l.npz", "--feature-size", "100"),
             2, "--feature-size must be a multiple of 14")  # fmt: skip
    entries = json.loads((scene / "cameras.json").read_text())
    entries[1]["width"] = 128.7
    (tmp_path / "fraction.json").write_text(json.dumps(entries))
    one_line(batch(tmp_path, "render", "--ply", SAMPLE, "--cameras", tmp_path / "fraction.json", "--out", tmp_path / "r"),
             2, "width must be a whole number of pixels, not 128.7")  # fmt: skip
    (tmp_path / "wrapped.json").write_text(json.dumps({"cameras": entries}))
    one_line(batch(tmp_path, "render", "--ply", SAMPLE, "--cameras", tmp_path / "wrapped.json", "--out", tmp_path / "r"),
             2, "neither a 3DGS cameras.json", "nor a transforms.json")  # fmt: skip
    huge = tmp_path / "huge.ply"
    huge.write_bytes(b"ply\nformat binary_little_endian 1.0\n" + b"comment " + b"x" * (1 << 20) + b"\n")
    one_line(batch(tmp_path, "convert", "--ply", huge, "--out", tmp_path / "o.ply"), 2, "header is longer than 1 MiB")
    clean(tmp_path, tmp_path, ["flat.ply", "fraction.json", "wrapped.json", "huge.ply", "temp"])


def test_trailing_bytes_are_reported_and_not_written(tmp_path):
    padded = tmp_path / "padded.ply"
    padded.write_bytes(SAMPLE.read_bytes() + b"\0" * 1000)
    result = batch(tmp_path, "convert", "--ply", padded, "--out", tmp_path / "o.ply")
    assert result.returncode == 0, result.stderr
    assert "1,000 bytes after the 4,721 Gaussians" in result.stdout  # Blender prints the import's warning
    assert (tmp_path / "o.ply").read_bytes() == SAMPLE.read_bytes()


def test_debug_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.ply"
    bad.write_bytes(b"not a ply")
    result = batch(tmp_path, "convert", "--ply", bad, "--out", tmp_path / "o.ply", "--debug")
    assert result.returncode == 2 and "Traceback" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("masksplat: bad.ply: not a PLY")


# ---------------------------------------------------------------- property names Blender cannot hold

ODD_NAMES = ["p" * 71 + "_a", "p" * 71 + "_b", "position", "gr\u00f6\u00dfe", "raw\udcff", ".select_vert", "sharp_face",
             "material_index", "ms_fg", "ply_5_sharp_face"]  # fmt: skip


def odd_names_ply(path: Path) -> Path:
    """The sample plus properties named as Blender cannot hold them (long, reserved, not UTF-8, its own)."""
    data = read_splats(SAMPLE)
    dtype = np.dtype(data.vertices.dtype.descr + [(n, "<f4") for n in ODD_NAMES] + [("ms_label", "<i4"), ("count", "<u4")])
    vertices = np.zeros(data.count, dtype)
    for name in data.vertices.dtype.names:
        vertices[name] = data.vertices[name]
    rng = np.random.default_rng(1)
    for name in ODD_NAMES:
        vertices[name] = rng.standard_normal(data.count)
    vertices["ms_label"], vertices["count"] = rng.integers(-1, 5, data.count), rng.integers(0, 2**32 - 1, data.count, dtype=np.uint64)
    write_ply(path, SplatData(vertices, data.sh_degree, comments=["caf\u00e9 bytes \udcfe kept"]))
    return path


def test_odd_property_names_survive_convert_byte_for_byte(tmp_path):
    source = odd_names_ply(tmp_path / "odd.ply")
    result = batch(tmp_path, "convert", "--ply", source, "--out", tmp_path / "o.ply")
    assert result.returncode == 0, result.stderr[-3000:]
    assert (tmp_path / "o.ply").read_bytes() == source.read_bytes()


def test_odd_property_names_survive_the_import_operator(blend, tmp_path):
    bpy = blend
    source = odd_names_ply(tmp_path / "odd.ply")
    assert bpy.ops.masksplat.import_splats(filepath=str(source)) == {"FINISHED"}
    obj = bpy.context.active_object
    names = set(obj.data.attributes.keys())
    assert {"gr\u00f6\u00dfe", "ms_label", "count"} <= names and "position.001" not in names
    assert {"ply_65_position", "ply_68_select_vert", "ply_69_sharp_face"} <= names
    assert bpy.ops.masksplat.export_splats(filepath=str(tmp_path / "o.ply")) == {"FINISHED"}
    assert (tmp_path / "o.ply").read_bytes() == source.read_bytes()


# ---------------------------------------------------------------- camera names


def test_cameras_sharing_a_file_stem_are_reported(tmp_path):
    cams = fruit_cameras(2, size=32)
    save_cameras_json(tmp_path / "cameras.json", cams)
    entries = json.loads((tmp_path / "cameras.json").read_text())
    entries[0]["img_name"], entries[1]["img_name"] = "cam0/0001.jpg", "cam1/0001.jpg"
    (tmp_path / "cameras.json").write_text(json.dumps(entries))
    one_line(batch(tmp_path, "render", "--ply", SAMPLE, "--cameras", tmp_path / "cameras.json", "--out", tmp_path / "r"),
             2, "'cam0/0001.jpg' and 'cam1/0001.jpg' share the file stem '0001'")  # fmt: skip
    entries[1]["img_name"] = "../../.."
    (tmp_path / "cameras.json").write_text(json.dumps(entries))
    one_line(batch(tmp_path, "render", "--ply", SAMPLE, "--cameras", tmp_path / "cameras.json", "--out", tmp_path / "r"),
             2, "image name '../../..' has no file name")  # fmt: skip


def test_load_masks_names_cameras_by_file_stem(blend, installed_addon, tmp_path):
    """COLMAP-style image names with folders find their masks, in Load Masks as in segment."""
    bpy = blend
    cams = fruit_cameras(2, size=32)
    save_cameras_json(tmp_path / "cameras.json", cams)
    entries = json.loads((tmp_path / "cameras.json").read_text())
    for index, entry in enumerate(entries):
        entry["img_name"] = f"cam{index}/{index:04d}.jpg"
    (tmp_path / "cameras.json").write_text(json.dumps(entries))
    (tmp_path / "masks").mkdir()
    for index in range(2):
        write_png(tmp_path / "masks" / f"{index:04d}.png", np.full((32, 32), 255, np.uint8))
    assert bpy.ops.masksplat.import_splats(filepath=str(SAMPLE)) == {"FINISHED"}
    assert bpy.ops.masksplat.import_cameras(filepath=str(tmp_path / "cameras.json")) == {"FINISHED"}
    assert bpy.ops.masksplat.load_masks(directory=str(tmp_path / "masks")) == {"FINISHED"}
    masked = [cam for cam in bpy.data.objects if cam.type == "CAMERA" and cam.masksplat.mask is not None]
    assert len(masked) == 2


# ---------------------------------------------------------------- the backend as the UI finds it; consent


def test_render_finds_the_managed_backend_like_segment(scene, tmp_path):
    """Only the managed environment has been installed: render finds it as the UI does."""
    marker = tmp_path / "managed-python-ran"
    python = tmp_path / "blender-user" / "config" / "masksplat" / "backend-venv" / "bin" / "python"
    python.parent.mkdir(parents=True)
    python.write_text(f"#!/bin/sh\ntouch '{marker}'\nexec '{sys.executable}' \"$@\"\n")
    python.chmod(0o755)
    result = batch(tmp_path, "render", "--ply", SAMPLE, "--cameras", scene / "cameras.json", "--out", tmp_path / "r", "--device", "cpu")
    assert result.returncode == 0, result.stderr[-3000:]
    assert marker.exists() and sorted(os.listdir(tmp_path / "r")) == [f"view_00{i}.png" for i in range(4)]


def test_network_use_needs_consent(blend, installed_addon, tmp_path):
    bpy = blend
    from masksplat_blender.client import BackendError, download_model, install_backend_venv

    assert not bpy.app.online_access  # the bpy module runs offline, like Blender with online access off
    with pytest.raises(RuntimeError, match="Online access is off"):
        bpy.ops.masksplat.install_backend(flavour="cpu")
    with pytest.raises(RuntimeError, match="Online access is off"):
        bpy.ops.masksplat.download_model(model_id="facebook/dinov2-small", folder=str(tmp_path / "model"))
    for call in (lambda: install_backend_venv(tmp_path / "venv", "cpu", allow_network=False),
                 lambda: download_model(sys.executable, "facebook/dinov2-small", tmp_path / "model", allow_network=False)):  # fmt: skip
        with pytest.raises(BackendError) as err:
            call()
        assert err.value.kind == "offline"
    assert not (tmp_path / "venv").exists() and not (tmp_path / "model").exists()
    package = installed_addon.__name__
    managed = Path(bpy.utils.extension_path_user(package, create=False)) / "backend-venv"
    assert not managed.exists()
