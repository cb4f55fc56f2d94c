"""Vote decisions (core.votes): the per-pixel vote weights, the paper's rule, beta,
FlashSplat's background bias, never-seen Gaussians and argmax labels."""

from __future__ import annotations

import numpy as np
import pytest

from masksplat_blender.core.votes import argmax_labels, never_seen, select_two_class, summarize, vote_weights


def test_two_class_weights_are_mask_and_its_complement_where_not_ignored():
    mask = np.array([[0, 51], [255, 102]], np.uint8)
    ignore = np.array([[False, False], [True, False]])
    w = vote_weights(mask, ignore)
    assert w.dtype == np.float32 and w.shape == (2, 2, 2) and w.flags.c_contiguous
    np.testing.assert_allclose(w[..., 0], [[0.0, 0.2], [0.0, 0.4]], atol=1e-7)
    np.testing.assert_allclose(w[..., 1], [[1.0, 0.8], [0.0, 0.6]], atol=1e-7)
    # float masks are taken as they are, an [H, W, 1] mask like an [H, W] one; any non-zero ignore casts no vote
    soft = np.array([[0.25, 1.0]], np.float32)
    np.testing.assert_array_equal(vote_weights(soft[:, :, None], np.array([[0, 7]], np.uint8)), [[[0.25, 0.75], [0.0, 0.0]]])
    np.testing.assert_array_equal(vote_weights(soft), [[[0.25, 0.75], [1.0, 0.0]]])


def test_label_weights_are_the_channels_where_not_ignored():
    mask = np.zeros((1, 2, 3), np.uint8)
    mask[0, 0] = [255, 0, 0]
    mask[0, 1] = [0, 0, 255]
    w = vote_weights(mask, np.array([[1, 0]], np.uint8), mode="labels")
    np.testing.assert_array_equal(w, [[[0, 0, 0], [0, 0, 1]]])
    with pytest.raises(ValueError, match="unknown vote mode"):
        vote_weights(mask, mode="three_class")


FG = np.array([3.0, 1.0, 0.0, 0.0, 2.0, 5.0], np.float32)
BG = np.array([1.0, 3.0, 2.0, 0.0, 2.0, 4.0], np.float32)


def test_paper_rule_is_fg_greater_than_bg():
    assert select_two_class(FG, BG).tolist() == [True, False, False, False, False, True]


def test_beta_scales_the_background():
    assert select_two_class(FG, BG, beta=0.5).tolist() == [True, False, False, False, True, True]
    assert select_two_class(FG, BG, beta=1.5).tolist() == [True, False, False, False, False, False]
    # beta = 0: anything with any foreground vote
    assert select_two_class(FG, BG, beta=0.0).tolist() == [True, True, False, False, True, True]


def test_background_bias_is_a_share_of_the_total_vote():
    # fg > bg + b (fg + bg): with b = 0.15, [5, 4] needs a margin of 1.35 and fails; [3, 1] needs 0.6 and passes
    assert select_two_class(FG, BG, bg_bias=0.15).tolist() == [True, False, False, False, False, False]
    assert select_two_class(FG, BG, bg_bias=0.1).tolist() == [True, False, False, False, False, True]
    # the bias is scale-free: multiplying all votes by a constant changes nothing
    for b in (0.0, 0.05, 0.3):
        assert (select_two_class(FG * 1000, BG * 1000, bg_bias=b) == select_two_class(FG, BG, bg_bias=b)).all()
    with pytest.raises(ValueError, match="bias"):
        select_two_class(FG, BG, bg_bias=1.0)
    with pytest.raises(ValueError, match="beta"):
        select_two_class(FG, BG, beta=-1)
    with pytest.raises(ValueError, match="shape"):
        select_two_class(FG, BG[:3])


def test_never_seen_is_never_selected():
    assert never_seen(FG, BG).tolist() == [False, False, False, True, False, False]
    fg = np.zeros(3)
    assert not select_two_class(fg, fg, beta=0.0).any()


def test_argmax_labels():
    votes = np.array([[0.0, 2.0, 1.0], [0.0, 0.0, 0.0], [5.0, 0.0, 5.0], [0.0, 0.0, 1e-9]], np.float32)
    labels = argmax_labels(votes)
    assert labels.dtype == np.int32 and labels.tolist() == [1, -1, 0, 2]
    with pytest.raises(ValueError):
        argmax_labels(np.zeros(3))


def test_summary_counts():
    selected = select_two_class(FG, BG)
    summary = summarize(FG, BG, selected)
    assert (summary.total, summary.selected, summary.unselected, summary.never_seen) == (6, 2, 3, 1)
    assert "2 of 6 Gaussians selected, 1 never seen" in str(summary)


# The first tests of these helpers (commit f05a8f5), kept beside the ones above.


def test_paper_rule_beta_and_never_seen():
    fg = np.array([2.0, 1.0, 0.0, 0.0, 3.0, 1.0])
    bg = np.array([1.0, 2.0, 0.0, 1.0, 3.0, 0.0])
    np.testing.assert_array_equal(select_two_class(fg, bg), [True, False, False, False, False, True])
    np.testing.assert_array_equal(select_two_class(fg, bg, beta=0.4), [True, True, False, False, True, True])
    np.testing.assert_array_equal(select_two_class(fg, bg, beta=0.0), [True, True, False, False, True, True])
    np.testing.assert_array_equal(never_seen(fg, bg), [False, False, True, False, False, False])
    summary = summarize(fg, bg, select_two_class(fg, bg))
    assert (summary.selected, summary.never_seen, summary.total) == (2, 1, 6)
    assert "2 of 6 Gaussians selected, 1 never seen" in str(summary)


def test_background_bias_needs_a_clearer_majority():
    fg, bg = np.array([6.0, 9.0]), np.array([4.0, 1.0])
    np.testing.assert_array_equal(select_two_class(fg, bg, bg_bias=0.0), [True, True])
    np.testing.assert_array_equal(select_two_class(fg, bg, bg_bias=0.3), [False, True])
    with pytest.raises(ValueError, match="background bias"):
        select_two_class(fg, bg, bg_bias=1.0)
    with pytest.raises(ValueError, match="beta"):
        select_two_class(fg, bg, beta=-1)
    with pytest.raises(ValueError, match="differ in shape"):
        select_two_class(fg, bg[:1])


def test_argmax_labels_marks_unseen_minus_one():
    votes = np.array([[0.0, 2.0, 1.0], [0.0, 0.0, 0.0], [5.0, 0.0, 5.0]])
    np.testing.assert_array_equal(argmax_labels(votes), [1, -1, 0])
    assert argmax_labels(votes).dtype == np.int32
    with pytest.raises(ValueError):
        argmax_labels(np.zeros(3))


def test_never_seen_gaussians_take_the_label_of_their_seen_neighbours():
    from masksplat_blender.core.votes import fill_never_seen

    rng = np.random.default_rng(0)
    means = np.concatenate([rng.normal([-2, 0, 0], 0.3, (500, 3)), rng.normal([2, 0, 0], 0.3, (500, 3))])
    truth = np.arange(1000) < 500
    seen = rng.uniform(size=1000) < 0.3  # most were never seen
    selected = truth & seen
    filled = fill_never_seen(means, selected, seen)
    np.testing.assert_array_equal(filled[seen], selected[seen])  # seen ones keep their votes' decision
    assert (filled == truth).mean() > 0.98
    np.testing.assert_array_equal(fill_never_seen(means, selected, np.ones(1000, bool)), selected)


def test_unseen_gaussians_far_from_any_seen_one_take_the_nearer_side():
    """Beyond the fine grid's few steps the coarser grids decide: still the nearer side wins."""
    from masksplat_blender.core.votes import fill_never_seen

    rng = np.random.default_rng(1)
    near_a, near_b = rng.normal([-0.9, 0, 0], 0.05, (200, 3)), rng.normal([1.1, 0, 0], 0.05, (200, 3))
    means = np.concatenate([rng.normal([-2, 0, 0], 0.2, (300, 3)), rng.normal([2, 0, 0], 0.2, (300, 3)), near_a, near_b])
    seen = np.arange(1000) < 600
    selected = np.arange(1000) < 300  # side A selected, side B not
    filled = fill_never_seen(means, selected, seen)
    assert filled[600:800].all() and not filled[800:].any()


def test_centre_baseline_counts_centres_in_the_mask():
    from masksplat_blender.core.votes import centre_votes

    mask = np.zeros((10, 10), np.float32)
    mask[:, :5] = 1
    uv = np.array([[2.5, 3.0], [7.5, 3.0], [20.0, 3.0], [2.0, 2.0]])
    hit, miss = centre_votes(uv, np.array([1.0, 1.0, 1.0, -1.0]), mask)
    np.testing.assert_array_equal(hit, [1, 0, 0, 0])
    np.testing.assert_array_equal(miss, [0, 1, 0, 0])
