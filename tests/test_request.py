"""The request format: what the backend accepts and the clear errors for what it refuses."""

from __future__ import annotations

import json

import numpy as np
import pytest

from masksplat_blender.core.cameras import orbit_cameras
from masksplat_blender.core.request import RequestError, read_request, write_request


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
    w0, w1 = request.weights(0), request.weights(1)
    assert w0.shape == (24, 32, 2) and w0.dtype == np.float32
    assert (w0[:4] == 0).all() and (w0[4:, :, 1] == 1).all()
    assert (w1[:, :, 0] == 1).all() and (w1[:, :, 1] == 0).all()


def test_label_masks_have_k_channels(tmp_path):
    masks = [np.zeros((24, 32, 5), np.uint8)] * 2
    request = read_request(valid_request(tmp_path, masks=masks, mode="labels"))
    assert request.channels == 5 and request.weights(0).shape == (24, 32, 5)


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
