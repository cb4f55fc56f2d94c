"""Selection tools on plain arrays: the voxel-hash neighbour search against brute force,
grow and shrink, select by value, and combining selections."""

from __future__ import annotations

import numpy as np
import pytest

from masksplat_blender.core.neighbours import kth_distance, reached
from masksplat_blender.core.selection import combine, grow, splat_sizes, splat_values, threshold
from masksplat_blender.core.splat_io import SH_C0


def _cloud(n=2500, seed=0):
    """A thin sheet with clumps and a few far outliers, sizes spread over two orders of magnitude."""
    rng = np.random.default_rng(seed)
    points = rng.normal(size=(n, 3)) * [1.0, 1.0, 0.03]
    points[: n // 10] = rng.normal(size=(n // 10, 3)) * 0.02 + [0.5, 0.5, 0]  # a dense clump
    points[-5:] *= 40.0
    reach = np.exp(rng.normal(np.log(0.02), 1.0, n))
    return points, reach


def _brute_reached(points, sources, targets, reach):
    d = np.linalg.norm(points[sources][:, None] - points[targets][None], axis=2)
    return (d <= reach[sources][:, None] + reach[targets][None]).any(axis=0)


@pytest.mark.parametrize("fraction", [0.02, 0.5, 0.95])
def test_reached_matches_brute_force(fraction):
    points, reach = _cloud()
    rng = np.random.default_rng(1)
    sources = np.flatnonzero(rng.random(len(points)) < fraction)
    targets = np.setdiff1d(np.arange(len(points)), sources)
    got = reached(points, sources, targets, reach)
    np.testing.assert_array_equal(got, _brute_reached(points, sources, targets, reach))
    assert 0 < got.sum() < len(targets)
    same = reached(points, sources, targets, np.full(len(points), 0.05))  # one reach for all: one level
    np.testing.assert_array_equal(same, _brute_reached(points, sources, targets, np.full(len(points), 0.05)))


@pytest.mark.parametrize("k", [1, 4, 16, 100])
def test_kth_distance_matches_brute_force(k):
    points, _ = _cloud()
    queries = np.arange(0, len(points), 7)
    d = np.linalg.norm(points[queries][:, None] - points[None], axis=2)
    d[np.arange(len(queries)), queries] = np.inf
    np.testing.assert_allclose(kth_distance(points, queries, k), np.sort(d, axis=1)[:, k - 1], rtol=1e-12)


def test_kth_distance_with_stacked_points_and_tiny_clouds():
    stacked = np.zeros((5000, 3))
    stacked[2500:] = 1.0
    assert (kth_distance(stacked, np.arange(5), 3) == 0).all()  # thousands of equal points: no endless refining
    two = np.array([[0.0, 0, 0], [3.0, 4.0, 0]])
    assert kth_distance(two, np.array([0]), 5)[0] == pytest.approx(5.0)  # k capped at the other points


def test_grow_and_shrink_by_radius_on_a_line():
    means = np.c_[np.arange(20.0), np.zeros(20), np.zeros(20)]
    selected = np.zeros(20, bool)
    selected[8:12] = True
    grown = grow(means, selected, radius=1.0)
    assert np.flatnonzero(grown).tolist() == list(range(7, 13))
    assert np.flatnonzero(grow(means, selected, radius=1.0, steps=3)).tolist() == list(range(5, 15))  # repeatable
    assert np.flatnonzero(grow(means, selected, radius=1.0, shrink=True)).tolist() == [9, 10]
    assert (grow(means, grow(means, selected, radius=1.0), radius=1.0, shrink=True) == selected).all()
    assert not grow(means, np.zeros(20, bool), radius=5.0).any()  # nothing to grow from
    with pytest.raises(ValueError, match="radius > 0 or by k"):
        grow(means, selected)


def test_grow_in_splat_sizes_lets_big_splats_reach_further():
    means = np.array([[0.0, 0, 0], [1.0, 0, 0], [10.0, 0, 0], [13.0, 0, 0]])
    selected = np.array([True, False, True, False])
    sizes = np.array([0.3, 0.3, 2.0, 2.0])
    # 1 apart at 0.3 + 0.3 = 0.6 (no), 3 apart at 2 + 2 = 4 (yes): sizes, not distances, decide
    assert grow(means, selected, radius=1.0, sizes=sizes).tolist() == [True, False, True, True]
    assert grow(means, selected, radius=2.0, sizes=sizes).tolist() == [True, True, True, True]


def test_grow_by_k_nearest():
    rng = np.random.default_rng(3)
    means = rng.normal(size=(400, 3))
    selected = np.zeros(400, bool)
    selected[[0, 1]] = True
    grown = grow(means, selected, k=5)
    d = np.linalg.norm(means[[0, 1]][:, None] - means[None], axis=2)
    d[[0, 1], [0, 1]] = np.inf
    nearest = set(np.argsort(d, axis=1)[:, :5].ravel()) | {0, 1}
    assert set(np.flatnonzero(grown)) == nearest
    shrunk = grow(means, grown, k=5, shrink=True)  # a selected splat with an unselected one among its 5 nearest goes
    assert shrunk.sum() < grown.sum() and not (shrunk & ~grown).any()


def test_select_by_value_kinds_and_actions():
    logits = np.array([-5.0, 0.0, 5.0])
    assert threshold(splat_values("OPACITY", opacity_logits=logits), 0.1, above=False).tolist() == [True, False, False]
    log_scales = np.log(np.array([[0.01, 0.02, 0.01], [0.01, 0.01, 0.01], [0.5, 0.01, 0.01]]))
    scale = splat_values("SCALE", log_scales=log_scales)
    np.testing.assert_allclose(scale, [1.0, 0.5, 25.0])  # the largest axis over the median splat's
    np.testing.assert_allclose(splat_sizes(log_scales), [0.02, 0.01, 0.5])
    red = (np.array([1.0, 0.0, 0.0]) - 0.5) / SH_C0
    f_dc = np.array([red, red * 0.9, -red])
    distance = splat_values("COLOUR", f_dc=f_dc, reference=(1.0, 0.0, 0.0))
    assert distance[0] == pytest.approx(0.0, abs=1e-6) and distance[1] < 0.1 < distance[2]
    with pytest.raises(ValueError, match="reference colour"):
        splat_values("COLOUR", f_dc=f_dc)
    current, chosen = np.array([True, True, False]), np.array([False, True, True])
    assert combine(current, chosen, "SET").tolist() == [False, True, True]
    assert combine(current, chosen, "ADD").tolist() == [True, True, True]
    assert combine(current, chosen, "REMOVE").tolist() == [True, False, False]
    with pytest.raises(ValueError, match="unknown selection action"):
        combine(current, chosen, "XOR")
