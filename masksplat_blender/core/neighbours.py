"""Neighbours in 3D without a KD-tree: a voxel hash in numpy (Blender's Python has no scipy).

Points go into cubic cells; a cell's key is a hash of its integer coordinates, the points
are sorted by key, and everything within one cell size of a point lies in the 27 cells
around it, found with `searchsorted`. Queries are grouped by their cell first, so each
occupied cell is looked up once and its candidates are shared by all its points; cells
with no candidates cost nothing more (the inside of a selection, for grow). Hash
collisions only add candidates: every distance is checked exactly. Pairs are expanded
in bounded blocks, so memory stays flat on millions of points.

Two questions are answered:
- `reached`: which targets lie within `reach_i + reach_j` of some source (per-point
  reaches, e.g. a few standard deviations of each splat). Reaches that differ a lot are
  handled by levels (powers of two of the median reach) on each side, and each pair of
  levels gets its own cell size, so a few big splats do not make every cell big.
- `kth_distance`: each query's distance to its k-th nearest other point, with a cell size
  that adapts per query (finer where points are dense, coarser where they are sparse).
"""

from __future__ import annotations

import numpy as np

_PRIMES = np.array([73856093, 19349663, 83492791], dtype=np.int64)
_OFFSETS = np.array([(i, j, k) for i in (-1, 0, 1) for j in (-1, 0, 1) for k in (-1, 0, 1)], dtype=np.int64)
PAIR_BUDGET = 1 << 21  # candidate pairs held at once
SAMPLE = 512  # kth_distance: queries sampled to find where to start
FINEST_LEVEL = -24  # kth_distance: cells 2**-24 of the first: stacks of equal points stop going finer here


def _keys(ijk: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        products = ijk * _PRIMES
    return products[:, 0] ^ products[:, 1] ^ products[:, 2]


def _ramp(counts: np.ndarray) -> np.ndarray:
    """0, 1, ..., c-1 for each count c, concatenated."""
    return np.arange(int(counts.sum())) - np.repeat(np.cumsum(counts) - counts, counts)


class _Grid:
    """Points sorted by the hash of their cell (cell size `cell`)."""

    def __init__(self, points: np.ndarray, cell: float):
        self.cell = float(cell)
        keys = _keys(np.floor(points / self.cell).astype(np.int64))
        self.order = np.argsort(keys, kind="stable")
        self.keys = keys[self.order]

    def ranges(self, cells: np.ndarray):
        """For each of the 27 cells around each of `cells` (integer [M, 3]): (lo, hi) ranges
        into `order`; a cell whose key an earlier one of the 27 had (a collision) is empty."""
        seen = []
        for offset in _OFFSETS:
            keys = _keys(cells + offset)
            lo, hi = np.searchsorted(self.keys, keys, "left"), np.searchsorted(self.keys, keys, "right")
            for earlier in seen:
                hi = np.where(keys == earlier, lo, hi)
            seen.append(keys)
            yield lo, hi


def _candidate_blocks(points: np.ndarray, queries: np.ndarray, others: np.ndarray, cell: float, cap: int | None = None,
                      counts: np.ndarray | None = None):  # fmt: skip
    """Every query paired with every point of `others` in the 27 cells around it, in blocks:
    yields (query rows, other rows, slot, column) arrays: rows index `queries` and `others`
    (None: all points);
    each query's candidates lie in one block, where the query has a slot (0, 1, ... within
    the block) and its candidates the columns 0, 1, ... Queries with more than `cap`
    candidates get none; `counts` (if given) receives every query's candidate count."""
    lo, hi = points[queries].min(axis=0) - cell, points[queries].max(axis=0) + cell
    candidates = points if others is None else points[others]
    kept = np.flatnonzero(np.all((candidates >= lo) & (candidates <= hi), axis=1))  # only what can be near a query
    grid = _Grid(candidates[kept], cell)
    grid.order = kept[grid.order]
    ijk = np.floor(points[queries] / cell).astype(np.int64)
    order = np.lexsort(ijk.T[::-1])
    ijk = ijk[order]
    starts = np.flatnonzero(np.r_[True, np.any(ijk[1:] != ijk[:-1], axis=1)])
    members = np.diff(np.r_[starts, len(order)])
    spans = list(grid.ranges(ijk[starts]))
    candidates = np.sum([hi - lo for lo, hi in spans], axis=0)
    if counts is not None:
        counts[order] = np.repeat(candidates, members)
    if cap is not None:
        spans = [(lo, np.where(candidates > cap, lo, hi)) for lo, hi in spans]
        candidates = np.where(candidates > cap, 0, candidates)
    work = np.cumsum(candidates * members)
    first = 0
    while first < len(starts):
        done = work[first - 1] if first else 0
        last = max(int(np.searchsorted(work, done + PAIR_BUDGET, "right")), first + 1)
        cells, positions = [], []
        for lo, hi in spans:
            n = hi[first:last] - lo[first:last]
            cells.append(np.repeat(np.arange(first, last), n))
            positions.append(np.repeat(lo[first:last], n) + _ramp(n))
        cells, positions = np.concatenate(cells), np.concatenate(positions)
        by_cell = np.argsort(cells, kind="stable")
        cells, positions = cells[by_cell], positions[by_cell]
        per = members[cells]
        slot = np.repeat(starts[cells] - starts[first], per) + _ramp(per)
        column = np.repeat(_ramp(candidates[first:last]), per)
        yield order[slot + starts[first]], grid.order[np.repeat(positions, per)], slot, column
        first = last


def reached(points: np.ndarray, sources: np.ndarray, targets: np.ndarray, reach: np.ndarray) -> np.ndarray:
    """bool [len(targets)]: target j lies within reach[i] + reach[j] of some source i.

    points: [N, 3]; sources, targets: indices into points; reach: [N] >= 0.
    """
    points = np.asarray(points, dtype=np.float64)
    reach = np.asarray(reach, dtype=np.float64)
    sources, targets = np.asarray(sources, np.int64), np.asarray(targets, np.int64)
    hit = np.zeros(len(targets), dtype=bool)
    if not len(sources) or not len(targets):
        return hit
    positive = reach[reach > 0]
    base = float(np.median(positive)) if positive.size else 1e-12
    level = np.maximum(np.ceil(np.log2(np.maximum(reach, base) / base)), 0).astype(np.int64)
    src_level, dst_level = level[sources], level[targets]
    for a in np.unique(src_level):
        src = sources[src_level == a]
        for b in np.unique(dst_level):
            rows = np.flatnonzero((dst_level == b) & ~hit)
            if rows.size:
                cell = max(float(reach[src].max() + reach[targets[rows]].max()), 1e-12)  # every close pair is nearer
                hit[rows[_hits(points, src, targets[rows], reach, cell)]] = True
    return hit


def _hits(points, src, dst, reach, cell) -> np.ndarray:
    """bool [len(dst)]: within reach of some source; every such pair is closer than `cell`.
    The smaller side queries, the larger is put in the grid."""
    swap = len(src) > len(dst)
    queries, others = (dst, src) if swap else (src, dst)
    found = np.zeros(len(dst), dtype=bool)
    for q, o, _, _ in _candidate_blocks(points, queries, others, cell):
        a, b = queries[q], others[o]
        close = np.sum((points[a] - points[b]) ** 2, axis=1) <= (reach[a] + reach[b]) ** 2
        found[(q if swap else o)[close]] = True
    return found


def kth_distance(points: np.ndarray, queries: np.ndarray, k: int) -> np.ndarray:
    """float [len(queries)]: distance from each query point to its k-th nearest other point.

    Each query starts at a cell size from the average density; where its 27 cells hold
    far more points than k needs it tries a cell half as big, where they hold fewer than k
    within one cell size, twice as big (and then never goes finer again).
    """
    points = np.asarray(points, dtype=np.float64)
    queries = np.asarray(queries, dtype=np.int64)
    out = np.full(len(queries), np.inf)
    if k < 1 or len(points) <= 1 or not len(queries):
        return out
    k = min(int(k), len(points) - 1)
    dense_cap = max(64, 16 * (k + 1))
    lo, hi = np.percentile(points, [1, 99], axis=0)
    cell0 = float(np.cbrt(np.prod(np.maximum(hi - lo, 1e-9)) / len(points) * (k + 1)))
    level = np.full(len(queries), _start_level(points, queries, k, cell0), dtype=np.int64)  # cell = cell0 * 2 ** level
    from_below = np.zeros(len(queries), dtype=bool)  # was too sparse one level finer: no cap
    pending = np.ones(len(queries), dtype=bool)
    while pending.any():
        for lvl in np.unique(level[pending]):
            rows = np.flatnonzero(pending & (level == lvl))
            cell = cell0 * 2.0**lvl
            cap = None if lvl <= FINEST_LEVEL else dense_cap
            dist, counts = np.full(len(rows), np.inf), np.zeros(len(rows), dtype=np.int64)
            for below, part_cap in ((True, None), (False, cap)):
                part = from_below[rows] == below
                if part.any():
                    dist[part], counts[part] = _kth_in_cells(points, queries[rows[part]], k, cell, part_cap)
            dense = (counts > dense_cap) & ~from_below[rows] & (lvl > FINEST_LEVEL)
            done = ~dense & (dist <= cell)
            out[rows[done]] = dist[done]
            pending[rows[done]] = False
            level[rows[dense]] -= 1
            sparse = rows[~dense & ~done]
            level[sparse] += 1
            from_below[sparse] = True
    return out


def _start_level(points, queries, k, cell0) -> int:
    """The level most queries end at, from a sample of them (saves rounds on uneven clouds,
    whose bounding box says little about their density)."""
    if len(queries) <= 4 * SAMPLE:
        return 0
    sample = np.random.default_rng(0).choice(queries, SAMPLE, replace=False)
    distances = kth_distance(points, sample, k)
    return int(np.median(np.ceil(np.log2(np.maximum(distances[np.isfinite(distances)], 1e-300) / cell0))))


def _kth_in_cells(points, queries, k, cell, cap) -> tuple[np.ndarray, np.ndarray]:
    """(k-th neighbour distance among the points in the 27 cells around each query (inf
    when fewer, or more than `cap`), candidate count including the query itself)."""
    dist = np.full(len(queries), np.inf)
    counts = np.zeros(len(queries), dtype=np.int64)
    for q, o, slot, column in _candidate_blocks(points, queries, None, cell, cap, counts):
        if not len(q):
            continue
        table = np.full((int(slot.max()) + 1, int(column.max()) + 1), np.inf)
        d = np.sqrt(np.sum((points[queries[q]] - points[o]) ** 2, axis=1))
        d[o == queries[q]] = np.inf  # not its own neighbour
        table[slot, column] = d
        rows = np.zeros(len(table), dtype=np.int64)
        rows[slot] = q
        if table.shape[1] >= k:
            dist[rows[np.unique(slot)]] = np.partition(table, k - 1, axis=1)[np.unique(slot), k - 1]
    return dist, counts
