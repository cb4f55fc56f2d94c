"""The backend's dispatch and request handlers in this process: one handler per request kind,
and views reaching a rasterizer in same-size groups of its `batch` (as they reach gsplat),
with the same votes as one view at a time."""

from __future__ import annotations

import numpy as np
from scenes import SAMPLE, fruit_cameras

from masksplat_blender.backend.handlers import HANDLERS, same_size_groups
from masksplat_blender.backend.raster_cpu import CpuRasterizer
from masksplat_blender.backend.server import handle
from masksplat_blender.core.request import KINDS, VOTES_FILE, load_array, read_request, write_request
from masksplat_blender.core.splat_io import read_splats


class GroupingCpuRasterizer(CpuRasterizer):
    """The real CPU rasterizer, taking views in groups as gsplat does; it notes each group's sizes."""

    batch = 2

    def __init__(self):
        self.groups = []

    def votes_masks(self, gaussians, views, masks, ignores, mode, out):
        self.groups.append([(view.width, view.height) for view in views])
        super().votes_masks(gaussians, views, masks, ignores, mode, out)


def test_every_request_kind_has_its_handler():
    assert set(HANDLERS) | {"ping"} == set(KINDS)


def test_same_size_groups_keep_order_size_and_batch():
    sizes = [(16, 16)] * 3 + [(24, 16)] * 2 + [(16, 16)]
    assert list(same_size_groups(sizes, 2)) == [[0, 1], [2], [3, 4], [5]]
    assert list(same_size_groups(sizes, 1)) == [[i] for i in range(6)]
    assert list(same_size_groups(sizes, 8)) == [[0, 1, 2], [3, 4], [5]]


def test_grouped_votes_equal_one_view_at_a_time(tmp_path):
    cams = fruit_cameras(3, 32) + fruit_cameras(2, 40, "big") + fruit_cameras(1, 32, "last")
    rng = np.random.default_rng(0)
    masks = [rng.integers(0, 256, (c.height, c.width), dtype=np.uint8) for c in cams]
    ignores = [None, rng.integers(0, 2, (32, 32)).astype(bool), None, None, np.zeros((40, 40), bool), None]
    arrays = read_splats(SAMPLE).gaussian_arrays()
    votes = {}
    for name, rasterizer in (("single", CpuRasterizer()), ("grouped", GroupingCpuRasterizer())):
        folder = tmp_path / name
        folder.mkdir()
        write_request(folder, "votes", arrays, cams, masks, ignores)
        progress = []
        result = handle(folder, "cpu", lambda *args, seen=progress: seen.append(args), lambda: False, {"cpu": (rasterizer, "test")})
        assert result["outputs"] == [VOTES_FILE] and result["device"] == "cpu"
        votes[name] = load_array(folder, VOTES_FILE)
        assert progress[-1] == (6, 6, "done")
        if name == "grouped":
            assert rasterizer.groups == [[(32, 32)] * 2, [(32, 32)], [(40, 40)] * 2, [(32, 32)]]
            names = [view.name for view in read_request(folder).views]
            assert progress[:-1] == [(i, 6, f"view {names[i]}") for i in (0, 2, 3, 5)]
    assert votes["single"].sum() > 1
    np.testing.assert_allclose(votes["grouped"], votes["single"], rtol=1e-6, atol=1e-6)
