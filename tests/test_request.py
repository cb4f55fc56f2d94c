"""The request format: what the backend accepts and the clear errors for what it refuses."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest

from masksplat_blender.core.orbit import orbit_cameras
from masksplat_blender.core.request import (
    ALPHA,
    RENDER,
    VOTES_FILE,
    RequestError,
    is_hugging_face_id,
    load_numbered,
    numbered_name,
    read_request,
    save_array,
    write_request,
)
from masksplat_blender.core.votes import vote_weights


def gaussians(n=10, seed=0):
    rng = np.random.default_rng(seed)
    return {
        "means": rng.normal(size=(n, 3)).astype(np.float32),
        "quats": rng.normal(size=(n, 4)).astype(np.float32),
        "log_scales": np.full((n, 3), -3.0, np.float32),
        "opacity_logits": np.zeros(n, np.float32),
    }


def valid_request(tmp_path, masks=None, **kwargs):
    cams = orbit_cameras([0, 0, 0], 4.0, 2, 32, 24)
    masks = masks if masks is not None else [np.zeros((24, 32), np.uint8), np.ones((24, 32), np.float32)]
    return write_request(tmp_path, "votes", gaussians(), cams, masks, **kwargs)


def test_valid_request_reads_back_with_weights(tmp_path):
    ignore = np.zeros((24, 32), bool)
    ignore[:4] = True
    folder = valid_request(tmp_path, ignores=[ignore, None])
    request = read_request(folder)
    assert request.kind == "votes" and request.num_gaussians == 10 and request.channels == 2
    w0, w1 = (vote_weights(*request.raw_mask(i), request.mode) for i in (0, 1))
    assert w0.shape == (24, 32, 2) and w0.dtype == np.float32
    assert (w0[:4] == 0).all() and (w0[4:, :, 1] == 1).all()
    assert (w1[:, :, 0] == 1).all() and (w1[:, :, 1] == 0).all()


def test_label_masks_have_k_channels(tmp_path):
    masks = [np.zeros((24, 32, 5), np.uint8)] * 2
    request = read_request(valid_request(tmp_path, masks=masks, mode="labels"))
    assert request.channels == 5 and vote_weights(*request.raw_mask(0), request.mode).shape == (24, 32, 5)


def _edit_header(folder, change):
    header = json.loads((folder / "header.json").read_text())
    change(header)
    (folder / "header.json").write_text(json.dumps(header))


CASES = {
    "unknown header key": (lambda f: _edit_header(f, lambda h: h.update(colour="red")), "unknown header keys: colour"),
    "unknown view key": (lambda f: _edit_header(f, lambda h: h["views"][0].update(zoom=2)), "unknown keys zoom"),
    "version": (lambda f: _edit_header(f, lambda h: h.update(version=9)), "version 9"),
    "kind": (lambda f: _edit_header(f, lambda h: h.update(kind="paint")), "unknown request kind"),
    "wrong shape": (lambda f: np.save(f / "means.npy", np.zeros((10, 2), np.float32)), "means.npy has shape (10, 2)"),
    "wrong dtype": (lambda f: np.save(f / "quats.npy", np.zeros((10, 4), np.float64)), "dtype float64"),
    "nan": (lambda f: np.save(f / "opacity_logits.npy", np.array([np.nan] * 10, np.float32)), "10 NaN or Inf"),
    "mask size": (lambda f: np.save(f / "mask_00001.npy", np.zeros((32, 24), np.uint8)), "mask is 24x32, the camera is 32x24"),
    "mask range": (lambda f: np.save(f / "mask_00001.npy", np.full((24, 32), 2.0, np.float32)), "must lie in [0, 1]"),
    "mask dtype": (lambda f: np.save(f / "mask_00001.npy", np.zeros((24, 32), np.int64)), "dtype int64"),
    "missing mask": (lambda f: (f / "mask_00000.npy").unlink(), "mask mask_00000.npy is missing"),
    "path escape": (lambda f: _edit_header(f, lambda h: h["views"][0].update(mask="../x.npy")), "plain .npy name"),
    "mask name not a string": (lambda f: _edit_header(f, lambda h: h["views"][0].update(mask=5)), "file name 5 must be a plain .npy"),
    "ignore path escape": (lambda f: _edit_header(f, lambda h: h["views"][1].update(ignore="/tmp/x.npy")), "plain .npy name"),
    "count": (lambda f: _edit_header(f, lambda h: h.update(num_gaussians=11)), "shape (10, 3), expected (11, 3)"),
    "camera": (lambda f: _edit_header(f, lambda h: h["views"][1].update(fx=-1)), "non-positive"),
    "object array": (lambda f: np.save(f / "means.npy", np.array([None] * 10, dtype=object)), "not a plain .npy"),
    "no header": (lambda f: (f / "header.json").unlink(), "no header.json"),
    "bad json": (lambda f: (f / "header.json").write_text("{"), "not valid JSON"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_requests_are_refused_clearly(tmp_path, case):
    folder = valid_request(tmp_path)
    change, message = CASES[case]
    change(folder)
    with pytest.raises(RequestError) as err:
        read_request(folder)
    assert message in str(err.value)


def test_two_class_needs_one_channel(tmp_path):
    with pytest.raises(RequestError, match="one channel"):
        read_request(valid_request(tmp_path, masks=[np.zeros((24, 32, 2), np.uint8)] * 2))


def test_ignore_as_uint8_and_float_masks(tmp_path):
    ignore = np.zeros((24, 32), np.uint8)
    ignore[:, :8] = 1
    soft = np.full((24, 32), 0.25, np.float32)
    request = read_request(valid_request(tmp_path, masks=[soft, np.full((24, 32), 51, np.uint8)], ignores=[ignore, None]))
    w0, w1 = (vote_weights(*request.raw_mask(i), request.mode) for i in (0, 1))
    assert (w0[:, :8] == 0).all() and np.allclose(w0[:, 8:], [0.25, 0.75])
    assert np.allclose(w1, [0.2, 0.8])


def test_render_and_ping_requests(tmp_path):
    cams = orbit_cameras([0, 0, 0], 4.0, 2, 32, 24)
    sh = np.zeros((10, 4, 3), np.float32)
    (tmp_path / "r").mkdir()
    request = read_request(write_request(tmp_path / "r", "render", gaussians(), cams, sh=sh, background=(1, 0, 0)))
    assert request.kind == "render" and request.sh_degree == 1 and request.background == [1.0, 0.0, 0.0] and len(request.views) == 2
    (tmp_path / "p").mkdir()
    (tmp_path / "p" / "header.json").write_text(json.dumps({"version": 1, "kind": "ping"}))
    assert read_request(tmp_path / "p").kind == "ping"


RENDER_CASES = {
    "no sh": (lambda f: (f / "sh.npy").unlink(), "needs sh.npy"),
    "sh shape": (lambda f: np.save(f / "sh.npy", np.zeros((10, 9, 3), np.float32)), "sh.npy has shape (10, 9, 3), expected (10, 4, 3)"),
    "sh degree": (lambda f: _edit_header(f, lambda h: h.update(sh_degree="two")), "sh_degree must be an integer"),
    "background": (lambda f: _edit_header(f, lambda h: h.update(background=[0, "x", 1])), "background must be three finite numbers"),
    "background nan": (lambda f: (f / "header.json").write_text((f / "header.json").read_text().replace('"background": [0.0', '"background": [NaN')), "finite"),
    "num_gaussians": (lambda f: _edit_header(f, lambda h: h.update(num_gaussians=True)), "positive integer"),
}


@pytest.mark.parametrize("case", sorted(RENDER_CASES))
def test_malformed_render_requests(tmp_path, case):
    cams = orbit_cameras([0, 0, 0], 4.0, 1, 32, 24)
    folder = write_request(tmp_path, "render", gaussians(), cams, sh=np.zeros((10, 4, 3), np.float32))
    change, message = RENDER_CASES[case]
    change(folder)
    with pytest.raises(RequestError) as err:
        read_request(folder)
    assert message in str(err.value)


def test_request_dir_is_private_and_arrays_load_without_pickle(tmp_path):
    from masksplat_blender.core.request import make_request_dir

    folder = make_request_dir()
    try:
        assert (folder.stat().st_mode & 0o777) == 0o700
        write_request(folder, "votes", gaussians(), orbit_cameras([0, 0, 0], 4.0, 1, 8, 8), [np.zeros((8, 8), np.uint8)])
        for path in folder.glob("*.npy"):
            np.load(path, allow_pickle=False)
    finally:
        shutil.rmtree(folder)


# ---------------------------------------------------------------- transfer requests


def transfer_request(tmp_path, **kwargs):
    cams = orbit_cameras([0, 0, 0], 4.0, 2, 32, 24)
    labels = np.zeros((20, 30), np.int32)
    labels[5:, 10:] = 3
    sources = [(np.zeros((20, 30, 3), np.uint8), labels), (np.full((8, 8, 3), 9, np.uint8), np.ones((8, 8), np.uint8))]
    options = {"model": "rgb-patches", "num_labels": 4, "k": 3, "feature_size": 224, "cache_dir": None, **kwargs}
    return write_request(tmp_path, "transfer", gaussians(), cams, sh=np.zeros((10, 1, 3), np.float32), background=(0, 0, 1),
                         sources=sources, **options)  # fmt: skip


def test_transfer_request_reads_back(tmp_path):
    request = read_request(transfer_request(tmp_path, cache_dir="/some/cache"))
    spec = request.transfer
    assert request.kind == "transfer" and request.sh_degree == 0 and request.background == [0.0, 0.0, 1.0]
    assert (spec.model, spec.num_labels, spec.k, spec.feature_size, spec.cache_dir) == ("rgb-patches", 4, 3, 224, "/some/cache")
    assert spec.sources == [("source_00000.npy", "source_labels_00000.npy"), ("source_00001.npy", "source_labels_00001.npy")]
    image, labels = request.source(0)
    assert image.shape == (20, 30, 3) and image.dtype == np.uint8 and labels.dtype == np.int32 and labels.max() == 3
    header = json.loads((tmp_path / "header.json").read_text())
    assert header["cache_dir"] == "/some/cache" and header["sources"][1]["labels"] == "source_labels_00001.npy"


def test_transfer_defaults_and_num_labels_from_the_labels(tmp_path):
    cams = orbit_cameras([0, 0, 0], 4.0, 1, 16, 16)
    folder = write_request(tmp_path, "transfer", gaussians(), cams, sh=np.zeros((10, 1, 3), np.float32), model="facebook/dinov2-small",
                           sources=[(np.zeros((16, 16, 3), np.uint8), np.full((16, 16), 5))])  # fmt: skip
    spec = read_request(folder).transfer
    assert (spec.num_labels, spec.k, spec.feature_size, spec.cache_dir) == (6, 5, 448, None)


TRANSFER_CASES = {
    "no model": (lambda h: h.pop("model"), "needs model"),
    "empty model": (lambda h: h.update(model=" "), "needs model"),
    "cache_dir": (lambda h: h.update(cache_dir=3), "cache_dir must be"),
    "k zero": (lambda h: h.update(k=0), "k must be an integer of at least 1"),
    "k bool": (lambda h: h.update(k=True), "k must be an integer"),
    "feature_size": (lambda h: h.update(feature_size=450), "multiple of 14"),
    "feature_size range": (lambda h: h.update(feature_size=1806), "feature_size must be an integer from 14 to 1792"),
    "num_labels": (lambda h: h.update(num_labels=34), "num_labels must be an integer from 2 to 33"),
    "no num_labels": (lambda h: h.pop("num_labels"), "needs num_labels"),
    "num_labels below the labels": (lambda h: h.update(num_labels=3), "label values 0..3 lie outside 0..2"),
    "no sources": (lambda h: h.update(sources=[]), "needs sources"),
    "source keys": (lambda h: h["sources"][0].update(mask="x.npy"), "exactly the keys image and labels"),
    "source path": (lambda h: h["sources"][1].update(labels="../x.npy"), "plain .npy name"),
    "source not npy": (lambda h: h["sources"][1].update(image="x.png"), "plain .npy name"),
}


@pytest.mark.parametrize("case", sorted(TRANSFER_CASES))
def test_malformed_transfer_headers(tmp_path, case):
    folder = transfer_request(tmp_path)
    change, message = TRANSFER_CASES[case]
    _edit_header(folder, change)
    with pytest.raises(RequestError) as err:
        read_request(folder)
    assert message in str(err.value)


TRANSFER_ARRAYS = {
    "image dtype": ("source_00000.npy", np.zeros((20, 30, 3), np.float32), "dtype float32, expected uint8"),
    "image channels": ("source_00000.npy", np.zeros((20, 30, 4), np.uint8), "shape (20, 30, 4), expected ('*', '*', 3)"),
    "labels dtype": ("source_labels_00000.npy", np.zeros((20, 30), np.int64), "dtype int64"),
    "labels size": ("source_labels_00001.npy", np.zeros((8, 9), np.uint8), "labels are 9x8, the image is 8x8"),
    "labels negative": ("source_labels_00000.npy", np.full((20, 30), -1, np.int32), "label values -1..-1 lie outside 0..3"),
    "labels pickled": ("source_labels_00000.npy", np.array([None] * 4, dtype=object), "not a plain .npy"),
    "no sh": ("sh.npy", None, "a transfer request needs sh.npy"),
    "missing image": ("source_00001.npy", None, "source_00001.npy is missing"),
}


@pytest.mark.parametrize("case", sorted(TRANSFER_ARRAYS))
def test_malformed_transfer_arrays(tmp_path, case):
    folder = transfer_request(tmp_path)
    name, array, message = TRANSFER_ARRAYS[case]
    if array is None:
        (folder / name).unlink()
    else:
        np.save(folder / name, array, allow_pickle=True)
    with pytest.raises(RequestError) as err:
        read_request(folder)
    assert message in str(err.value)


def test_every_file_name_on_the_wire_comes_from_core(tmp_path):
    """The names the client reads back are the names write_request and the backend write."""
    ignore = np.zeros((24, 32), bool)
    folder = valid_request(tmp_path, ignores=[None, ignore])
    header = json.loads((folder / "header.json").read_text())
    assert [v.get("mask") for v in header["views"]] == [numbered_name("mask", 0), numbered_name("mask", 1)]
    assert [v.get("ignore") for v in header["views"]] == [None, "ignore_00001.npy"]
    assert (numbered_name(RENDER, 12), numbered_name(ALPHA, 0), VOTES_FILE) == ("render_00012.npy", "alpha_00000.npy", "votes.npy")
    for index in range(3):
        save_array(folder, numbered_name(RENDER, index), np.full((2, 2, 3), index, np.uint8))
    assert [int(a[0, 0, 0]) for a in load_numbered(folder, RENDER, 3)] == [0, 1, 2]


@pytest.mark.parametrize(
    "text, expected",
    [("facebook/dinov2-small", True), ("owner/my.model_v-2", True), ("owner/", False), ("/name", False),
     ("a/b/c", False), ("../x", False), ("owner/..", False), ("models/dino v2", False), ("./dinov2", False),
     ("rgb-patches", False)],
)  # fmt: skip
def test_hugging_face_ids_are_told_from_folders(text, expected):
    assert is_hugging_face_id(text) is expected
