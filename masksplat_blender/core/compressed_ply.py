"""PlayCanvas compressed PLY (`.compressed.ply`, SuperSplat's and splat-transform's format).

A binary PLY with three elements, in this order:
- `chunk` (one per 256 Gaussians): float min/max of x y z, of the log-scales (clamped to
  +-20) and, optionally, of the DC colours (`0.5 + SH_C0 * f_dc`): 12 or 18 floats.
- `vertex`: four uint32 per Gaussian. Position and scale are 11/10/11-bit fractions
  between their chunk's min and max; colour is 8 bits each of r g b (between the chunk's
  colour range, or absolute without it) and sigmoid(opacity); rotation is "smallest three":
  2 bits naming the largest of w x y z, three 10-bit values of `c / sqrt(2) + 0.5`.
- optional `sh`: uchar `f_rest_*` (channel-major, as in INRIA PLYs), `v / 8 + 0.5` in 8 bits.

Written Gaussians are sorted in Morton (Z-curve) order first, as splat-transform does, so
that each chunk's bounds are tight; the order of the object is not kept.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .splat_io import (
    F_REST_COUNTS,
    MAX_HEADER,
    SH_C0,
    SplatData,
    SplatFileError,
    _parse_header,
    decode_table,
    logits_from_alpha,
    ply_header,
    sigmoid,
    write_atomically,
)

CHUNK = 256
BOUNDS = ("min_x", "min_y", "min_z", "max_x", "max_y", "max_z",
          "min_scale_x", "min_scale_y", "min_scale_z", "max_scale_x", "max_scale_y", "max_scale_z")  # fmt: skip
COLOUR_BOUNDS = ("min_r", "min_g", "min_b", "max_r", "max_g", "max_b")
PACKED = ("packed_position", "packed_rotation", "packed_scale", "packed_color")
LOSSES = (
    "positions and log-scales become 11/10/11-bit steps within each chunk of 256 Gaussians, colour and "
    "opacity 8 bits, rotations 3 x 10 bits and SH coefficients 8 bits, and Gaussians are written in "
    "Morton order, not in the object's order"
)


def _elements(path: Path) -> tuple:
    """The header and {element: (count, dtype, byte offset in the file)}."""
    with open(path, "rb") as handle:
        header = _parse_header(path, handle.read(MAX_HEADER))
    names = [element[0] for element in header.elements]
    if sorted(names) not in (["chunk", "vertex"], ["chunk", "sh", "vertex"]):
        raise SplatFileError(path, f"elements {', '.join(names)}: a compressed PLY holds chunk, vertex and optionally sh")
    elements, offset = {}, header.size
    for name, count, props in header.elements:
        dtype = np.dtype([(prop, header.byte_order + code) for prop, code in props])
        elements[name] = (count, dtype, offset)
        offset += count * dtype.itemsize
    if offset > path.stat().st_size:
        raise SplatFileError(path, f"truncated: the header promises {offset:,} bytes, the file has {path.stat().st_size:,}")
    return header, elements


def _check_layout(path: Path, elements: dict) -> int:
    """Validate the elements; returns the SH degree."""
    (chunks, chunk_dtype, _), (count, vertex_dtype, _) = elements["chunk"], elements["vertex"]
    chunk_fields = chunk_dtype.names
    if set(chunk_fields) not in (set(BOUNDS), set(BOUNDS + COLOUR_BOUNDS)):
        raise SplatFileError(path, "chunk element needs the 12 position/scale bounds (and optionally 6 colour bounds)")
    if any(chunk_dtype.fields[name][0].kind != "f" for name in chunk_fields):
        raise SplatFileError(path, "chunk bounds must be float")
    if not set(PACKED) <= set(vertex_dtype.names) or any(vertex_dtype.fields[n][0].str[1:] != "u4" for n in PACKED):
        raise SplatFileError(path, f"vertex element needs uint properties {', '.join(PACKED)}")
    if count == 0:
        raise SplatFileError(path, "the file holds zero Gaussians")
    if chunks != -(-count // CHUNK):
        raise SplatFileError(path, f"{chunks:,} chunks for {count:,} Gaussians; the format has one per {CHUNK}")
    if "sh" not in elements:
        return 0
    sh_count, sh_dtype, _ = elements["sh"]
    rest = len(sh_dtype.names)
    if sh_count != count or rest not in F_REST_COUNTS or rest == 0:
        raise SplatFileError(path, f"sh element has {sh_count:,} rows of {rest} values; expected {count:,} rows of 9, 24 or 45")
    if list(sh_dtype.names) != [f"f_rest_{i}" for i in range(rest)] or any(sh_dtype.fields[n][0].str[1:] != "u1" for n in sh_dtype.names):
        raise SplatFileError(path, "sh element must hold uchar f_rest_0.. in order")
    return F_REST_COUNTS[rest]


def _unorm(word: np.ndarray, shift: int, bits: int) -> np.ndarray:
    return ((word >> shift) & ((1 << bits) - 1)).astype(np.float64) / ((1 << bits) - 1)


def _lerp(bounds: np.ndarray, low: str, high: str, t: np.ndarray, owner: np.ndarray) -> np.ndarray:
    lo, hi = bounds[low].astype(np.float64)[owner], bounds[high].astype(np.float64)[owner]
    return lo * (1.0 - t) + hi * t


def read_compressed_ply(path) -> SplatData:
    """Read a PlayCanvas compressed PLY into the INRIA layout, float32, in file order."""
    path = Path(path)
    header, elements = _elements(path)
    degree = _check_layout(path, elements)
    bounds = np.fromfile(path, dtype=elements["chunk"][1], count=elements["chunk"][0], offset=elements["chunk"][2])
    count, vertex_dtype, vertex_offset = elements["vertex"]
    # Mapped, not read: blocks copy straight from the page cache.
    packed = np.memmap(path, dtype=vertex_dtype, mode="r", offset=vertex_offset, shape=(count,))
    words = {name: packed[name].astype(np.uint32) for name in PACKED}
    sh = None
    if degree:
        _, sh_dtype, sh_offset = elements["sh"]
        sh = np.memmap(path, dtype=np.uint8, mode="r", offset=sh_offset, shape=(count, sh_dtype.itemsize))
    lut = ((np.arange(256) + 0.5) / 256.0 - 0.5) * 8.0
    lut[0], lut[255] = -4.0, 4.0
    lut = lut.astype(np.float32)

    def fill(rows, a, b, column):
        owner = np.arange(a, b) // CHUNK
        for axis, (shift, bits) in enumerate(((21, 11), (11, 10), (0, 11))):
            xyz = "xyz"[axis]
            t = _unorm(words["packed_position"][a:b], shift, bits)
            rows[:, axis] = _lerp(bounds, f"min_{xyz}", f"max_{xyz}", t, owner)
            t = _unorm(words["packed_scale"][a:b], shift, bits)
            rows[:, column[f"scale_{axis}"]] = _lerp(bounds, f"min_scale_{xyz}", f"max_scale_{xyz}", t, owner)
        colour = words["packed_color"][a:b]
        for channel, rgb in enumerate("rgb"):
            t = _unorm(colour, 24 - 8 * channel, 8)
            value = _lerp(bounds, f"min_{rgb}", f"max_{rgb}", t, owner) if "min_r" in bounds.dtype.names else t
            rows[:, column[f"f_dc_{channel}"]] = (value - 0.5) / SH_C0
        rows[:, column["opacity"]] = logits_from_alpha(_unorm(colour, 0, 8))
        rows[:, column["rot_0"] : column["rot_0"] + 4] = _unpack_rotations(words["packed_rotation"][a:b])
        if sh is not None:
            np.take(lut, sh[a:b], out=rows[:, column["f_rest_0"] : column["f_rest_0"] + sh.shape[1]])

    vertices = decode_table(count, degree, fill)
    return SplatData(vertices, degree, str(path), "<", list(header.comments))


def _unpack_rotations(word: np.ndarray) -> np.ndarray:
    """[N, 4] wxyz from 2 + 3 x 10 bits (the three stored components keep their w x y z order)."""
    scale = 1.0 / (np.sqrt(2.0) * 0.5)
    stored = np.stack([(_unorm(word, shift, 10) - 0.5) * scale for shift in (20, 10, 0)], axis=1)
    largest = (word >> 30).astype(np.intp)
    out = np.empty((word.shape[0], 4))
    others = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]
    rows = np.arange(word.shape[0])[:, None]
    out[rows, others] = stored
    out[rows[:, 0], largest] = np.sqrt(np.maximum(0.0, 1.0 - np.einsum("ij,ij->i", stored, stored)))
    return out


def _part1by2(v: np.ndarray) -> np.ndarray:
    v = v & 0x3FF
    v = (v ^ (v << 16)) & 0xFF0000FF
    v = (v ^ (v << 8)) & 0x0300F00F
    v = (v ^ (v << 4)) & 0x030C30C3
    return (v ^ (v << 2)) & 0x09249249


def morton_order(means: np.ndarray) -> np.ndarray:
    """Indices [N] sorting positions [N, 3] along a 30-bit Z curve; equal-code runs over 256 refined recursively."""
    order = np.arange(means.shape[0])
    _sort_run(np.asarray(means, dtype=np.float64), order)
    return order


def _sort_run(means: np.ndarray, order: np.ndarray) -> None:
    points = means[order]
    low, high = points.min(axis=0), points.max(axis=0)
    extent = high - low
    if not np.isfinite(extent).all() or not extent.any():
        return
    with np.errstate(divide="ignore"):
        scale = np.where(extent > 0, 1024.0 / extent, 0.0)
    cells = np.minimum(1023, (points - low) * scale).astype(np.uint32)
    codes = (_part1by2(cells[:, 2]) << 2) + (_part1by2(cells[:, 1]) << 1) + _part1by2(cells[:, 0])
    ranked = np.argsort(codes, kind="stable")
    order[:] = order[ranked]
    codes = codes[ranked]
    edges = np.flatnonzero(np.diff(codes)) + 1
    starts, stops = np.concatenate([[0], edges]), np.concatenate([edges, [codes.size]])
    crowded = stops - starts > CHUNK
    for start, stop in zip(starts[crowded], stops[crowded], strict=True):
        _sort_run(means, order[start:stop])


def _chunk_range(values: np.ndarray, low: float | None = None, high: float | None = None):
    """Per-chunk min and max of [C, 256] values (optionally clamped) and the normalised values."""
    lo, hi = values.min(axis=1), values.max(axis=1)
    if low is not None:
        lo, hi = np.clip(lo, low, high), np.clip(hi, low, high)
    span = (hi - lo)[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = np.where(span < 1e-5, 0.0, (values - lo[:, None]) / span)
    t = np.where(values <= lo[:, None], 0.0, np.where(values >= hi[:, None], 1.0, t))
    return lo, hi, t


def _unorm_bits(t: np.ndarray, bits: int) -> np.ndarray:
    top = (1 << bits) - 1
    return np.clip(np.floor(t * top + 0.5), 0, top).astype(np.uint32)


def _pack_rotations(quats_wxyz: np.ndarray) -> np.ndarray:
    q = np.asarray(quats_wxyz, dtype=np.float64)
    norm = np.sqrt(np.einsum("ij,ij->i", q, q))[:, None]
    with np.errstate(divide="ignore", invalid="ignore"):
        q = np.where(norm > 0, q * (1.0 / norm), np.array([1.0, 0.0, 0.0, 0.0]))
    largest = np.argmax(np.abs(q), axis=1)
    rows = np.arange(q.shape[0])
    q = np.where((q[rows, largest] < 0)[:, None], -q, q)
    others = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[largest]
    stored = q[rows[:, None], others] * (np.sqrt(2.0) * 0.5) + 0.5
    word = largest.astype(np.uint32)
    for i in range(3):
        word = (word << 10) | _unorm_bits(stored[:, i], 10)
    return word


def write_compressed_ply(path, data: SplatData) -> str:
    """Write `data` as a PlayCanvas compressed PLY (Morton order); returns what the format loses."""
    path = Path(path)
    order = morton_order(data.means())
    count, degree = data.count, data.sh_degree
    chunks = -(-count // CHUNK)
    # Pad the last chunk by repeating its last Gaussian, as the reference writer does.
    padded = np.concatenate([order, np.full(chunks * CHUNK - count, order[-1])])

    def chunked(values):
        return np.asarray(values, dtype=np.float64)[padded].reshape(chunks, CHUNK, -1)

    means, scales = chunked(data.means()), chunked(data.log_scales())
    colours = (chunked(data.f_dc()) * SH_C0 + 0.5).astype(np.float32).astype(np.float64)  # float32, as the reference
    bounds = np.empty((chunks, 18), dtype="<f4")
    words = np.zeros((chunks, CHUNK, 4), dtype="<u4")
    for axis, (shift, bits) in enumerate(((21, 11), (11, 10), (0, 11))):
        bounds[:, axis], bounds[:, 3 + axis], t = _chunk_range(means[:, :, axis])
        words[:, :, 0] |= _unorm_bits(t, bits) << shift
        bounds[:, 6 + axis], bounds[:, 9 + axis], t = _chunk_range(scales[:, :, axis], -20.0, 20.0)
        words[:, :, 2] |= _unorm_bits(t, bits) << shift
    for channel in range(3):
        bounds[:, 12 + channel], bounds[:, 15 + channel], t = _chunk_range(colours[:, :, channel])
        words[:, :, 3] |= _unorm_bits(t, 8) << (24 - 8 * channel)
    words[:, :, 3] |= _unorm_bits(sigmoid(chunked(data.opacity_logits())[:, :, 0]), 8)
    words[:, :, 1] = _pack_rotations(chunked(data.quats_wxyz()).reshape(-1, 4)).reshape(chunks, CHUNK)
    vertex = np.dtype([(name, "<u4") for name in PACKED])
    sh_rows = None
    if degree:
        rest = data.vertices[[f"f_rest_{i}" for i in range(3 * ((degree + 1) ** 2 - 1))]][order]
        sh_dtype = np.dtype([(name, "u1") for name in rest.dtype.names])
        sh_rows = np.empty(count, dtype=sh_dtype)
        for name in rest.dtype.names:
            sh_rows[name] = np.clip(np.trunc((rest[name].astype(np.float64) / 8.0 + 0.5) * 256.0), 0, 255)
    elements = [("chunk", chunks, np.dtype([(name, "<f4") for name in BOUNDS + COLOUR_BOUNDS])), ("vertex", count, vertex)]
    if sh_rows is not None:
        elements.append(("sh", count, sh_rows.dtype))

    def write(handle):
        handle.write(ply_header(elements, "<", data.comments))
        bounds.tofile(handle)
        words.reshape(-1, 4)[:count].tofile(handle)
        if sh_rows is not None:
            sh_rows.tofile(handle)

    write_atomically(path, write)
    return LOSSES
