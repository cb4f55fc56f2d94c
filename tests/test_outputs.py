"""The output guard (core.outputs) and error kinds (core.errors) on their own, in process."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import numpy as np
import pytest

from masksplat_blender.client import BackendCancelled, BackendError
from masksplat_blender.commands.common import write_json, write_npz
from masksplat_blender.core import errors, interrupts, outputs
from masksplat_blender.core.camera_files import CameraFormatError
from masksplat_blender.core.errors import BadInput, MaskSplatError
from masksplat_blender.core.outputs import OutputSet


def files(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def write(output, text: str) -> None:
    with output.writing() as temp:
        temp.write_text(text)


def test_outputs_appear_only_on_publish_and_as_written(tmp_path):
    (tmp_path / "in.txt").write_text("input")
    with OutputSet([tmp_path / "in.txt"]) as out:
        a, b = out.file(tmp_path / "a.ply", "--out"), out.file(tmp_path / "b.json", "--summary")
        write(a, "A")
        write(b, "B")
        assert files(tmp_path) == sorted(["in.txt", a.temp.name, b.temp.name])
        assert a.temp.name.endswith("a.ply")  # a writer that picks the format by extension still sees it
        out.publish()
    assert files(tmp_path) == ["a.ply", "b.json", "in.txt"]
    assert (tmp_path / "a.ply").read_text() == "A"


def test_every_check_happens_before_anything_is_written(tmp_path):
    (tmp_path / "in.ply").write_text("input")
    (tmp_path / "old.ply").write_text("old")
    (tmp_path / "folder").mkdir()
    cases = [
        ((tmp_path / "in.ply"), "also an input"),
        ((tmp_path / "folder" / ".." / "in.ply"), "also an input"),
        ((tmp_path / "old.ply"), "exists; pass --overwrite"),
        ((tmp_path / "folder"), "is a folder"),
        ((tmp_path / "missing" / "x.ply"), "folder"),
        ((tmp_path / "in.ply" / "x.ply"), "is not a folder"),
        (f"{tmp_path}/new/", "names a folder"),
    ]
    for path, message in cases:
        with pytest.raises(BadInput, match=message):
            OutputSet([tmp_path / "in.ply"]).file(path, "--out")
    out = OutputSet()
    out.file(tmp_path / "x.ply", "--out")
    with pytest.raises(BadInput, match="--out and --rest name the same file"):
        out.file(tmp_path / "folder" / ".." / "x.ply", "--rest")
    assert files(tmp_path) == ["folder", "in.ply", "old.ply"]


def test_files_in_an_input_folder_are_inputs(tmp_path):
    sparse = tmp_path / "dataset" / "sparse" / "0"
    sparse.mkdir(parents=True)
    (sparse / "images.bin").write_bytes(b"colmap")
    with pytest.raises(BadInput, match="also an input"):
        OutputSet([tmp_path / "dataset"], overwrite=True).file(sparse / "images.bin", "--out")


def test_only_regular_files_are_replaced(tmp_path):
    os.mkfifo(tmp_path / "pipe")
    (tmp_path / "dangling").symlink_to(tmp_path / "nowhere")
    for name in ("pipe", "dangling"):
        with pytest.raises(BadInput, match="not a regular file"):
            OutputSet(overwrite=True).file(tmp_path / name, "--summary")


def test_a_failure_while_publishing_puts_the_old_set_back(tmp_path):
    for name in ("a.ply", "b.ply"):
        (tmp_path / name).write_text(f"old {name}")
    with pytest.raises(MaskSplatError, match="--rest .* was not written"), OutputSet(overwrite=True) as out:
        write(out.file(tmp_path / "a.ply", "--out"), "new a")
        out.file(tmp_path / "b.ply", "--rest")  # its writer failed before writing
        out.publish()
    assert files(tmp_path) == ["a.ply", "b.ply"]
    assert (tmp_path / "a.ply").read_text() == "old a.ply" and (tmp_path / "b.ply").read_text() == "old b.ply"


def test_creation_is_exclusive_when_two_runs_race(tmp_path):
    first, second = OutputSet(), OutputSet()
    outputs_ = [s.file(tmp_path / "o.ply", "--out") for s in (first, second)]  # both checked: o.ply is new
    for output, text in zip(outputs_, ("first", "second"), strict=True):
        write(output, text)
    first.publish()
    with pytest.raises(BadInput, match="appeared while this command ran"), second:
        second.publish()
    assert (tmp_path / "o.ply").read_text() == "first" and files(tmp_path) == ["o.ply"]


def test_a_cancel_while_publishing_leaves_the_old_set(tmp_path, monkeypatch):
    """SIGINT lands between two outputs being put in place: the publish finishes its step, then
    undoes itself and the cancel goes on."""
    for name in ("a.ply", "b.ply"):
        (tmp_path / name).write_text("old")
    place = outputs._place

    def place_then_signal(temp, path):
        place(temp, path)
        os.kill(os.getpid(), signal.SIGINT)

    monkeypatch.setattr(outputs, "_place", place_then_signal)
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    interrupts.install()
    try:
        with pytest.raises(KeyboardInterrupt), OutputSet(overwrite=True) as out:
            for name in ("a.ply", "b.ply"):
                write(out.file(tmp_path / name, "--out"), "new")
            out.publish()
        assert interrupts.requested() == "SIGINT"
    finally:
        for sig, handler in saved.items():
            signal.signal(sig, handler)
        interrupts._STATE["signal"] = None
    assert files(tmp_path) == ["a.ply", "b.ply"] and {(tmp_path / n).read_text() for n in ("a.ply", "b.ply")} == {"old"}


def test_a_folder_output_is_made_only_on_publish(tmp_path):
    with pytest.raises(RuntimeError), OutputSet() as out:
        folder = out.folder(tmp_path / "renders", "--out")
        write(folder.file("view_000.png"), "png")
        raise RuntimeError("the backend failed")
    assert files(tmp_path) == []
    with OutputSet() as out:
        folder = out.folder(tmp_path / "renders", "--out")
        for name in ("view_000.png", "view_001.png"):
            write(folder.file(name), name)
        out.publish()
    assert files(tmp_path) == ["renders"] and files(tmp_path / "renders") == ["view_000.png", "view_001.png"]
    with pytest.raises(BadInput, match="exists; pass --overwrite"):
        OutputSet().folder(tmp_path / "renders", "--out").file("view_000.png")
    with pytest.raises(BadInput, match="not a plain file name"):
        OutputSet().folder(tmp_path / "renders", "--out").file("../x.png")


def test_a_full_disk_names_the_output(tmp_path):
    output = OutputSet().file(tmp_path / "o.ply", "--out")
    message = r"cannot write --out .*o\.ply \(4 requested and 2 written\): is the disk full\?"
    with pytest.raises(MaskSplatError, match=message), output.writing():
        raise OSError("4 requested and 2 written")


def test_npz_and_json_keep_exactly_the_given_name(tmp_path):
    with OutputSet() as out:
        votes, summary = out.file(tmp_path / "votes.bin", "--votes"), out.file(tmp_path / "s", "--summary")
        write_npz(votes, fg=np.ones(3, np.float32))
        write_json(summary, {"ok": True})
        out.publish()
    assert files(tmp_path) == ["s", "votes.bin"]
    with np.load(tmp_path / "votes.bin", allow_pickle=False) as npz:
        assert npz.files == ["fg"]


def test_error_kinds_come_from_types_never_from_text():
    kinds = {
        BadInput("x"): errors.BAD_INPUT, MaskSplatError("cancelled"): errors.FAILURE, errors.Cancelled(): errors.CANCELLED,
        KeyboardInterrupt(): errors.CANCELLED, CameraFormatError("c.json", "not found"): errors.BAD_INPUT,
        OSError(27, "File too large"): errors.FAILURE, RuntimeError("the request was cancelled"): errors.FAILURE,
        BackendError("python_missing", "cancelled"): errors.FAILURE, BackendError("model_unavailable", "x"): errors.BAD_INPUT,
        BackendCancelled(): errors.CANCELLED,
    }  # fmt: skip
    for err, kind in kinds.items():
        assert errors.outcome_of(err) == kind, err
    assert [errors.EXIT_CODES[k] for k in (errors.OK, errors.FAILURE, errors.BAD_INPUT, errors.CANCELLED)] == [0, 1, 2, 130]
    errors.record(BadInput("reported"))
    assert str(errors.take()) == "reported" and errors.take() is None
