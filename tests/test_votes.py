"""Votes to selections: the paper's rule, beta, the background bias, never-seen, argmax."""

from __future__ import annotations

import numpy as np
import pytest

from masksplat_blender.core.votes import argmax_labels, never_seen, select_two_class, summarize


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
