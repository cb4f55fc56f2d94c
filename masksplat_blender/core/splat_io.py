"""Splat files in and out: INRIA binary PLY and antimatter15 `.splat` losslessly, and the
one place that picks a format for every other codec (`read_splats`, `write_splats`).

The PLY body is read with one `np.fromfile` of a structured dtype built from the header,
so the file's exact property order, types and byte order survive to `write_ply`, and
untouched Gaussians are written back bit for bit. Compressed formats (PlayCanvas
compressed PLY, Niantic SPZ, PlayCanvas SOG; `compressed_ply.py`, `spz.py`, `sog.py`)
decode into the same INRIA layout (x y z, f_dc_*, channel-major f_rest_*, opacity logit,
log scale_*, wxyz rot_*), so everything downstream sees one kind of splat.
numpy only (1.26 and 2), no bpy.
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .outputs import atomic_file

SH_C0 = 0.28209479177387814
REQUIRED = (
    "x", "y", "z", "f_dc_0", "f_dc_1", "f_dc_2", "opacity",
    "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3",
)  # fmt: skip
F_REST_COUNTS = {0: 0, 9: 1, 24: 2, 45: 3}
PLY_TYPES = {
    "char": "i1", "int8": "i1", "uchar": "u1", "uint8": "u1",
    "short": "i2", "int16": "i2", "ushort": "u2", "uint16": "u2",
    "int": "i4", "int32": "i4", "uint": "u4", "uint32": "u4",
    "float": "f4", "float32": "f4", "double": "f8", "float64": "f8",
}  # fmt: skip
PLY_NAMES = {"i1": "char", "u1": "uchar", "i2": "short", "u2": "ushort", "i4": "int", "u4": "uint", "f4": "float", "f8": "double"}
MAX_HEADER = 1 << 20
HEADER_ENCODING = ("utf-8", "surrogateescape")  # any bytes in a name or comment survive a round trip
# Quantised opacities of 0 and 255 would be logits of -inf and +inf: like splat-transform's
# SPZ and SOG readers, alpha is kept inside [1e-6, 1 - 1e-6] (logits of about +-13.8).
ALPHA_EPSILON = 1e-6


@dataclass(frozen=True)
class SplatFormat:
    """A splat file format: how users name it, how files of it are named, whether we write it."""

    key: str
    label: str
    suffixes: tuple[str, ...]
    writable: bool


SPLAT_FORMATS = (
    SplatFormat("ply", "INRIA PLY", (".ply",), True),
    SplatFormat("compressed_ply", "PlayCanvas compressed PLY", (".compressed.ply",), True),
    SplatFormat("spz", "Niantic SPZ", (".spz",), True),
    SplatFormat("sog", "PlayCanvas SOG", (".sog", "meta.json"), False),
    SplatFormat("splat", "antimatter15 .splat", (".splat",), False),
)
# File browser filter for import (a SOG folder is opened through its meta.json).
IMPORT_GLOB = "*.ply;*.splat;*.spz;*.sog;*.json"


class SplatFileError(ValueError):
    """A splat file that cannot be read or written; the message names the file and the problem."""

    def __init__(self, path, problem: str):
        super().__init__(f"{Path(path).name if path else '<splat data>'}: {problem}")
        self.path = str(path)
        self.problem = problem


@dataclass
class SplatData:
    """Gaussians exactly as stored in a file.

    vertices: structured array [N] with the file's dtype (field order, types, byte order).
    """

    vertices: np.ndarray
    sh_degree: int
    source: str = ""
    byte_order: str = "<"
    comments: list[str] = field(default_factory=list)
    n_dropped: int = 0
    warnings: list[str] = field(default_factory=list)

    @property
    def count(self) -> int:
        return int(self.vertices.shape[0])

    def _stack(self, names) -> np.ndarray:
        out = np.zeros((self.count, len(names)), dtype=np.float32)  # zeros: see decode_table
        for column, (_, values) in enumerate(iter_columns(self.vertices, names)):
            out[:, column] = values
        return out

    def means(self) -> np.ndarray:
        """[N, 3] float32 positions."""
        return self._stack(("x", "y", "z"))

    def quats_wxyz(self) -> np.ndarray:
        """[N, 4] float32 rotations as stored (wxyz, not necessarily normalised)."""
        return self._stack(("rot_0", "rot_1", "rot_2", "rot_3"))

    def log_scales(self) -> np.ndarray:
        """[N, 3] float32 log standard deviations."""
        return self._stack(("scale_0", "scale_1", "scale_2"))

    def opacity_logits(self) -> np.ndarray:
        """[N] float32 opacity before the sigmoid."""
        return np.ascontiguousarray(self.vertices["opacity"], dtype=np.float32)

    def f_dc(self) -> np.ndarray:
        """[N, 3] float32 SH degree-0 coefficients."""
        return self._stack(("f_dc_0", "f_dc_1", "f_dc_2"))

    def f_rest(self) -> np.ndarray:
        """[N, M, 3] float32 higher SH coefficients, M = (d+1)^2 - 1 (file is channel-major)."""
        m = (self.sh_degree + 1) ** 2 - 1
        flat = self._stack([f"f_rest_{i}" for i in range(3 * m)])
        return np.ascontiguousarray(flat.reshape(self.count, 3, m).transpose(0, 2, 1))

    def sh(self) -> np.ndarray:
        """[N, (d+1)^2, 3] float32 SH coefficients, DC first."""
        return np.concatenate([self.f_dc()[:, None, :], self.f_rest()], axis=1)

    def gaussian_arrays(self) -> dict[str, np.ndarray]:
        """The backend's geometry arrays (core.request): means, wxyz quats, log_scales, opacity_logits."""
        return {"means": self.means(), "quats": self.quats_wxyz(), "log_scales": self.log_scales(), "opacity_logits": self.opacity_logits()}

    def colors_rgb(self) -> np.ndarray:
        """[N, 3] float32 view-independent colour 0.5 + C0 * f_dc (not clamped)."""
        return (0.5 + SH_C0 * self.f_dc()).astype(np.float32)


def inria_dtype(sh_degree: int, normals: bool = True, byte_order: str = "<", extra=()) -> np.dtype:
    """The INRIA trainer's vertex layout (plus `extra` (name, dtype) pairs appended)."""
    names = ["x", "y", "z"] + (["nx", "ny", "nz"] if normals else []) + ["f_dc_0", "f_dc_1", "f_dc_2"]
    names += [f"f_rest_{i}" for i in range(3 * ((sh_degree + 1) ** 2 - 1))]
    names += ["opacity", "scale_0", "scale_1", "scale_2", "rot_0", "rot_1", "rot_2", "rot_3"]
    fields = [(name, byte_order + "f4") for name in names]
    fields += [(name, np.dtype(dt).newbyteorder(byte_order).str) for name, dt in extra]
    return np.dtype(fields)


@dataclass
class _Header:
    byte_order: str
    elements: list  # [(name, count, [(prop, dtype_code)])]
    comments: list[str]
    size: int


def _parse_header(path: Path, raw: bytes) -> _Header:
    end = raw.find(b"end_header")
    if not raw.startswith(b"ply") or end < 0:
        if not raw.startswith(b"ply"):
            raise SplatFileError(path, "not a PLY file (it does not start with 'ply')")
        if len(raw) >= MAX_HEADER:
            raise SplatFileError(path, f"the PLY header is longer than {MAX_HEADER >> 20} MiB (no 'end_header' in it); not a splat file?")
        raise SplatFileError(path, "PLY header has no 'end_header' line")
    newline = raw.find(b"\n", end)
    if newline < 0:
        raise SplatFileError(path, "PLY header is not terminated by a newline")
    # Names are bytes to PLY: kept exactly (HEADER_ENCODING) so export writes them back byte for byte.
    lines = raw[:end].decode(*HEADER_ENCODING).replace("\r", "").split("\n")
    byte_order, elements, comments = None, [], []
    for line in lines[1:]:
        words = line.split()
        if not words:
            continue
        key = words[0]
        if key == "format":
            fmt = words[1] if len(words) > 1 else ""
            if fmt == "ascii":
                raise SplatFileError(path, "ASCII PLY is not supported; splat files are binary (re-save as binary_little_endian)")
            if fmt not in ("binary_little_endian", "binary_big_endian"):
                raise SplatFileError(path, f"unknown PLY format '{fmt}'")
            byte_order = "<" if fmt == "binary_little_endian" else ">"
        elif key == "comment":
            comments.append(line[len("comment") :].strip())
        elif key == "obj_info":
            comments.append(line)
        elif key == "element":
            if len(words) != 3 or not words[2].isdigit():
                raise SplatFileError(path, f"malformed element line '{line}'")
            elements.append((words[1], int(words[2]), []))
        elif key == "property":
            if not elements:
                raise SplatFileError(path, "a property comes before any element")
            if len(words) >= 2 and words[1] == "list":
                raise SplatFileError(
                    path, f"element '{elements[-1][0]}' has a list property ('{words[-1]}'); splat files have none"
                )
            if len(words) != 3 or words[1] not in PLY_TYPES:
                raise SplatFileError(path, f"malformed property line '{line}'")
            elements[-1][2].append((words[2], PLY_TYPES[words[1]]))
        else:
            raise SplatFileError(path, f"unexpected header line '{line}'")
    if byte_order is None:
        raise SplatFileError(path, "PLY header has no format line")
    return _Header(byte_order, elements, comments, newline + 1)


def _check_layout(path: Path, names: tuple[str, ...], dtype: np.dtype) -> int:
    missing = [name for name in REQUIRED if name not in names]
    if missing:
        raise SplatFileError(path, f"missing required properties: {', '.join(missing)} (not a Gaussian splat PLY?)")
    not_float = [name for name in REQUIRED if dtype.fields[name][0].kind != "f"]
    if not_float:
        raise SplatFileError(path, f"properties {', '.join(not_float)} must be float, not integer")
    rest = [name for name in names if name.startswith("f_rest_")]
    if len(rest) not in F_REST_COUNTS:
        raise SplatFileError(path, f"{len(rest)} f_rest properties; SH degree 0-3 needs 0, 9, 24 or 45")
    expected = [f"f_rest_{i}" for i in range(len(rest))]
    if sorted(rest, key=lambda n: int(n[7:]) if n[7:].isdigit() else -1) != expected:
        raise SplatFileError(path, "f_rest properties are not numbered f_rest_0.. consecutively")
    bad_rest = [name for name in rest if dtype.fields[name][0].kind != "f"]
    if bad_rest:
        raise SplatFileError(path, f"SH properties must be float ({bad_rest[0]} is not)")
    return F_REST_COUNTS[len(rest)]


def _uniform_view(vertices: np.ndarray) -> np.ndarray | None:
    """[N, F] view of a structured array whose fields all share one dtype, else None."""
    dtype = vertices.dtype
    first = dtype.fields[dtype.names[0]][0]
    if any(dtype.fields[name][0] != first for name in dtype.names) or dtype.itemsize != first.itemsize * len(dtype.names):
        return None
    if not vertices.flags.c_contiguous:
        return None
    return vertices.view(first).reshape(vertices.shape[0], len(dtype.names))


def iter_columns(vertices: np.ndarray, names, block: int = 16, rows: int = 8192):
    """Yield (name, column) for `names` as native contiguous arrays, fast.

    Gathering one field of a wide record touches a cache line per row, so for uniform
    layouts blocks of fields are transposed a few thousand rows at a time instead, into
    one reused buffer: a yielded column is valid only until the next one is asked for.
    """
    names = list(names)
    if not names:
        return
    flat = _uniform_view(vertices)
    if flat is None:
        for name in names:
            column = vertices[name]
            yield name, np.ascontiguousarray(column, dtype=column.dtype.newbyteorder("="))
        return
    index = {name: i for i, name in enumerate(vertices.dtype.names)}
    native = flat.dtype.newbyteorder("=")
    n = flat.shape[0]
    cols = [index[name] for name in names]
    if cols != list(range(cols[0], cols[0] + len(cols))):
        for name in names:  # not one run of neighbouring fields: plain gathers
            yield name, np.ascontiguousarray(flat[:, index[name]], dtype=native)
        return
    buffer = np.empty((min(block, len(cols)), n), dtype=native)
    for start in range(0, len(cols), block):
        lo, hi = cols[start], cols[min(start + block, len(cols)) - 1] + 1
        for row in range(0, n, rows):
            buffer[: hi - lo, row : row + rows] = flat[row : row + rows, lo:hi].T
        for col in range(lo, hi):
            yield names[col - cols[0]], buffer[col - lo]


def _finite_mask(path: Path, vertices: np.ndarray) -> np.ndarray:
    """True for Gaussians whose float properties are all finite.

    When every property is float32 (the usual file), one row sum over a 2D view finds the
    candidates (NaN and Inf propagate; a finite row only sums to Inf by overflow), and
    only those rows are checked exactly.
    """
    dtype = vertices.dtype
    codes = {dtype.fields[name][0].str for name in dtype.names}
    if len(codes) == 1 and codes.pop()[1:] == "f4" and dtype.itemsize == 4 * len(dtype.names):
        flat = vertices.view(dtype.fields[dtype.names[0]][0]).reshape(vertices.shape[0], len(dtype.names))
        with np.errstate(over="ignore", invalid="ignore"):
            candidates = np.flatnonzero(~np.isfinite(flat.sum(axis=1, dtype=np.float32)))
        ok = np.ones(vertices.shape[0], dtype=bool)
        if candidates.size:
            ok[candidates] = np.isfinite(flat[candidates]).all(axis=1)
        return ok
    ok = np.ones(vertices.shape[0], dtype=bool)
    for name in vertices.dtype.names:
        if vertices.dtype.fields[name][0].kind == "f":
            ok &= np.isfinite(vertices[name])
    return ok


def _zero_rotation(vertices: np.ndarray) -> np.ndarray:
    """True for Gaussians whose rotation quaternion is all zeros: no orientation, nothing to render."""
    names = ("rot_0", "rot_1", "rot_2", "rot_3")
    flat = _uniform_view(vertices)
    first = vertices.dtype.names.index(names[0])
    if flat is not None and flat.dtype == np.dtype("<f4") and vertices.dtype.names[first : first + 4] == names:
        # Two 64-bit words a row, sign bits masked (-0.0 is zero too): one pass, no per-field gathers.
        words = flat[:, first : first + 4].view(np.uint64)
        return ((words[:, 0] | words[:, 1]) & np.uint64(0x7FFFFFFF7FFFFFFF)) == 0
    zero = np.ones(vertices.shape[0], dtype=bool)
    for name in names:
        zero &= vertices[name] == 0
    return zero


def _drop_invalid(path: Path, data: SplatData, drop_invalid: bool) -> SplatData:
    finite = _finite_mask(path, data.vertices)
    ok = finite & ~_zero_rotation(data.vertices)
    bad = int(ok.size - np.count_nonzero(ok))
    if bad == 0:
        return data
    nonfinite = int(finite.size - np.count_nonzero(finite))
    flat = bad - nonfinite
    what = " and ".join(
        ([f"{nonfinite:,} Gaussians have NaN or Inf values"] if nonfinite else [])
        + ([f"{flat:,} {'Gaussians have' if not nonfinite else 'have'} a zero rotation (rot_0..rot_3 all 0)"] if flat else [])
    )  # fmt: skip
    if not drop_invalid:
        raise SplatFileError(path, f"{what}; tick 'Drop Invalid Gaussians' to drop them")
    if bad == ok.size:
        raise SplatFileError(path, f"every Gaussian is invalid: {what}")
    data.vertices = data.vertices[ok]
    data.n_dropped = bad
    return data


def read_ply(path, drop_invalid: bool = False) -> SplatData:
    """Read an INRIA-layout binary PLY."""
    path = Path(path)
    with open(path, "rb") as handle:
        head = handle.read(MAX_HEADER)
        header = _parse_header(path, head)
        file_size = os.fstat(handle.fileno()).st_size
        vertex = [e for e in header.elements if e[0] == "vertex"]
        others = [e[0] for e in header.elements if e[0] != "vertex"]
        if not vertex:
            raise SplatFileError(path, "no 'vertex' element")
        if others:
            raise SplatFileError(
                path, f"unexpected element(s) {', '.join(others)}: a splat file holds only vertices (is this a mesh?)"
            )
        _, count, props = vertex[0]
        names = tuple(name for name, _ in props)
        if len(set(names)) != len(names):
            raise SplatFileError(path, "a property name appears twice")
        dtype = np.dtype([(name, header.byte_order + code) for name, code in props])
        sh_degree = _check_layout(path, names, dtype)
        if count == 0:
            raise SplatFileError(path, "the file holds zero Gaussians")
        needed = header.size + count * dtype.itemsize
        if needed > file_size:
            have = max(file_size - header.size, 0) // dtype.itemsize
            raise SplatFileError(
                path, f"the header promises {count:,} Gaussians but the file ends after {have:,} (truncated?)"
            )
    # Mapped, not read: import copies straight from the page cache into Blender.
    vertices = np.memmap(path, dtype=dtype, mode="r", offset=header.size, shape=(count,))
    data = SplatData(vertices, sh_degree, str(path), header.byte_order, header.comments)
    if file_size > needed:
        data.warnings.append(f"{file_size - needed:,} bytes after the {count:,} Gaussians are not part of the splat data and were ignored")
    wide = [name for name in names if dtype.fields[name][0].kind == "f" and dtype.fields[name][0].itemsize == 8]
    if wide:
        data.warnings.append(
            f"{len(wide)} double-precision properties ({', '.join(wide[:3])}{'...' if len(wide) > 3 else ''}) "
            "are kept as float32 in Blender and written back as float64"
        )
    return _drop_invalid(path, data, drop_invalid)


def read_splat(path, drop_invalid: bool = False) -> SplatData:
    """Read antimatter15 `.splat` (32 bytes a splat) into the INRIA layout, float32 little endian."""
    path = Path(path)
    raw = np.fromfile(path, dtype=np.uint8)
    if raw.size == 0:
        raise SplatFileError(path, "the file holds zero Gaussians")
    if raw.size % 32:
        raise SplatFileError(path, f"size {raw.size:,} bytes is not a multiple of 32 (not a .splat file?)")
    records = raw.view(
        np.dtype([("position", "<f4", 3), ("scale", "<f4", 3), ("rgba", "u1", 4), ("rot", "u1", 4)])
    )
    n = records.shape[0]
    vertices = np.empty(n, dtype=inria_dtype(0, normals=False))
    with np.errstate(divide="ignore", invalid="ignore"):
        for axis, name in enumerate("xyz"):
            vertices[name] = records["position"][:, axis]
        rgba = records["rgba"].astype(np.float32) / 255.0
        for channel in range(3):
            vertices[f"f_dc_{channel}"] = (rgba[:, channel] - 0.5) / SH_C0
        alpha = np.clip(rgba[:, 3], 0.5 / 255.0, 254.5 / 255.0)
        vertices["opacity"] = np.log(alpha / (1.0 - alpha))
        for axis in range(3):
            vertices[f"scale_{axis}"] = np.log(records["scale"][:, axis])
        quat = (records["rot"].astype(np.float32) - 128.0) / 128.0
        quat /= np.linalg.norm(quat, axis=1, keepdims=True)
        for i in range(4):
            vertices[f"rot_{i}"] = quat[:, i]
    data = SplatData(vertices, 0, str(path), "<", ["converted from antimatter15 .splat by MaskSplat"])
    return _drop_invalid(path, data, drop_invalid)


def _format_of_file(path: Path) -> str:
    """The key of the SPLAT_FORMATS entry a file holds, from its first bytes and then its name."""
    if not path.exists():
        raise SplatFileError(path, f"file not found ({path})")
    if path.is_dir():
        if (path / "meta.json").is_file():
            return "sog"
        raise SplatFileError(path, "is a folder without a meta.json, so neither a splat file nor a SOG folder")
    with open(path, "rb") as handle:
        head = handle.read(MAX_HEADER)
    if not head:
        raise SplatFileError(path, "the file is empty")
    if head.startswith(b"ply"):
        header = _parse_header(path, head)
        return "compressed_ply" if any(element[0] == "chunk" for element in header.elements) else "ply"
    if head.startswith((b"NGSP", b"\x1f\x8b")):
        return "spz"
    if head.startswith(b"PK\x03\x04") or (path.suffix.lower() == ".json" and head.lstrip().startswith(b"{")):
        return "sog"
    if path.suffix.lower() == ".splat":
        return "splat"
    if path.suffix.lower() == ".ply":
        raise SplatFileError(path, "not a PLY file (it does not start with 'ply')")
    raise SplatFileError(
        path, "not a splat file: expected an INRIA or compressed PLY, SPZ, SOG (.sog, or a folder's meta.json) or .splat"
    )


def read_splats(path, drop_invalid: bool = False, decode_webp=None) -> SplatData:
    """Read any supported splat file, choosing the format by content (then extension).

    `decode_webp(data, name) -> [H, W, 4] uint8` decodes SOG images; without it the
    decoder the Blender layer registered (`sog.set_webp_decoder`) is used.
    """
    path = Path(path)
    kind = _format_of_file(path)
    if kind == "ply":
        return read_ply(path, drop_invalid)
    if kind == "splat":
        return read_splat(path, drop_invalid)
    from . import compressed_ply, sog, spz  # the codecs build on this module

    if kind == "sog":
        data = sog.read_sog(path, decode_webp)
    elif kind == "spz":
        data = spz.read_spz(path)
    else:
        data = compressed_ply.read_compressed_ply(path)
    return _drop_invalid(path, data, drop_invalid)


def format_of_name(path) -> SplatFormat | None:
    """The format a file name's extension names (`.compressed.ply` before `.ply`), if any."""
    name = Path(path).name.lower()
    for fmt in sorted(SPLAT_FORMATS, key=lambda f: -max(map(len, f.suffixes))):
        if name.endswith(fmt.suffixes):
            return fmt
    return None


def splat_name(path) -> str:
    """A name for the splats in `path`: the file name without its format's extension (a SOG folder's name)."""
    path = Path(path)
    if path.is_dir() or path.name.lower() == "meta.json":
        folder = path if path.is_dir() else path.resolve().parent
        return folder.name or "Splats"
    fmt = format_of_name(path)
    suffix = next((s for s in fmt.suffixes if path.name.lower().endswith(s)), "") if fmt else path.suffix
    return path.name[: len(path.name) - len(suffix)] or path.name


def output_format(path) -> SplatFormat:
    """The format to write `path` in, from its extension; refuses formats we cannot write."""
    fmt = format_of_name(path)
    writable = ", ".join(f.suffixes[0] for f in SPLAT_FORMATS if f.writable)
    if fmt is None:
        raise SplatFileError(path, f"unknown splat file extension; export to {writable}")
    if not fmt.writable:
        raise SplatFileError(path, f"MaskSplat reads but does not write {fmt.label}; export to {writable}")
    return fmt


def write_splats(path, data: SplatData, keep: np.ndarray | None = None) -> list[str]:
    """Write the Gaussians (where `keep`) in the format of `path`'s extension.

    Returns what the format loses, one line, for the caller to say once ([] for PLY).
    """
    fmt = output_format(path)
    if fmt.key == "ply":
        write_ply(path, data, keep)
        return []
    from . import compressed_ply, spz

    writer = {"compressed_ply": compressed_ply.write_compressed_ply, "spz": spz.write_spz}[fmt.key]
    vertices = kept_vertices(path, data, keep)
    if keep is not None:
        data = SplatData(vertices, data.sh_degree, data.source, data.byte_order, list(data.comments))
    note = writer(path, data)
    dropped = [name for name in data.vertices.dtype.names if name not in inria_dtype(data.sh_degree, normals=False).names]
    if dropped:
        shown = ", ".join(dropped[:4]) + (", ..." if len(dropped) > 4 else "")
        note += f"; it has no place for the other {len(dropped)} properties ({shown}), which are left out"
    return [f"{fmt.label}: {note}"]


def decode_table(count: int, sh_degree: int, fill, block: int = 8192) -> np.ndarray:
    """A float32 INRIA vertex array (no normals) that `fill(rows, start, stop, column)` writes
    `block` Gaussians at a time, blocks in parallel threads: rows [B, F] float32, `column` maps
    property names to F indices.

    Decoders produce one property at a time; writing whole columns of a million-row table
    goes to memory once per property, a block's rows stay in cache (about 3x faster).
    """
    dtype = inria_dtype(sh_degree, normals=False)
    column = {name: i for i, name in enumerate(dtype.names)}
    # zeros, not empty: calloc maps zero pages lazily, while a fresh np.empty of this size is
    # madvised for huge pages and its first touch can stall in compaction (5x slower here).
    table = np.zeros((count, len(dtype.names)), dtype=np.float32)
    starts = range(0, count, block)
    with ThreadPoolExecutor(max_workers=min(len(starts), os.cpu_count() or 1)) as pool:  # numpy frees the GIL
        list(pool.map(lambda start: fill(table[start : start + block], start, min(start + block, count), column), starts))
    return table.view(dtype).reshape(count)


def logits_from_alpha(alpha: np.ndarray) -> np.ndarray:
    """Opacity logits [N] float32 from alpha in [0, 1] (kept within ALPHA_EPSILON of the ends)."""
    alpha = np.clip(np.asarray(alpha, dtype=np.float64), ALPHA_EPSILON, 1.0 - ALPHA_EPSILON)
    return np.log(alpha / (1.0 - alpha)).astype(np.float32)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """float64 logistic function (no overflow warnings for large logits)."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-np.asarray(x, dtype=np.float64)))


def _header_bytes(data: SplatData, count: int) -> bytes:
    return _header_for(data.vertices.dtype, data.byte_order, data.comments, count)


def _header_for(dtype: np.dtype, byte_order: str, comments, count: int) -> bytes:
    return ply_header([("vertex", count, dtype)], byte_order, comments)


def ply_header(elements, byte_order: str = "<", comments=()) -> bytes:
    """A binary PLY header for `elements`, a list of (name, count, structured dtype)."""
    fmt = "binary_little_endian" if byte_order == "<" else "binary_big_endian"
    lines = ["ply", f"format {fmt} 1.0"]
    for comment in comments:
        lines.append(comment if comment.startswith("obj_info") else f"comment {comment}")
    for element, count, dtype in elements:
        lines.append(f"element {element} {count}")
        for name in dtype.names:
            code = dtype.fields[name][0]
            lines.append(f"property {PLY_NAMES[code.kind + str(code.itemsize)]} {name}")
    lines.append("end_header")
    return ("\n".join(lines) + "\n").encode(*HEADER_ENCODING)


def kept_vertices(path, data: SplatData, keep: np.ndarray | None) -> np.ndarray:
    """The vertices to write: all, or those where `keep` ([N] bool) is True. Refuses a `keep`
    of another shape or type, and nothing to write."""
    vertices = data.vertices
    if keep is not None:
        keep = np.asarray(keep)
        if keep.dtype != bool or keep.shape != (data.count,):
            raise SplatFileError(path, f"keep must be a bool array of {data.count} entries, got {keep.dtype} {keep.shape}")
        vertices = vertices[keep]
    if vertices.shape[0] == 0:
        raise SplatFileError(path, "nothing to write: zero Gaussians are kept")
    return vertices


def write_ply(path, data: SplatData, keep: np.ndarray | None = None) -> None:
    """Write the Gaussians (only those where `keep` is True) in the layout they were read with.

    Written to a temporary file beside `path` and renamed, so a failure never leaves a
    half-written file and an existing file is replaced only by a complete one.
    """
    path = Path(path)
    vertices = kept_vertices(path, data, keep)
    expected = np.dtype([(name, vertices.dtype.fields[name][0].newbyteorder(data.byte_order)) for name in vertices.dtype.names])
    vertices = np.ascontiguousarray(vertices.astype(expected, copy=False))
    write_atomically(path, lambda handle: (handle.write(_header_bytes(data, vertices.shape[0])), vertices.tofile(handle)))


def write_atomically(path: Path, write) -> None:
    """write(handle) into a temporary file beside `path`, then rename it over `path`."""
    folder = path.parent if str(path.parent) else Path(".")
    if not folder.is_dir():
        raise SplatFileError(path, f"folder {folder} does not exist")
    with atomic_file(path) as handle:
        write(handle)


def write_ply_columns(path, dtype: np.dtype, columns: dict, byte_order: str = "<", comments=(),
                      keep: np.ndarray | None = None, block: int = 16384) -> None:  # fmt: skip
    """Write Gaussians given as one array per property (`dtype` names the file's fields in
    order), the same bytes `write_ply` writes, without building the whole table first:
    rows are assembled a cache-sized block at a time (export of 1M SH3 Gaussians: 248 MB
    less memory, and no strided pass over it per property)."""
    path = Path(path)
    dtype = np.dtype([(name, dtype.fields[name][0].newbyteorder(byte_order)) for name in dtype.names])
    if keep is not None:
        keep = np.asarray(keep, dtype=bool)
        columns = {name: np.asarray(columns[name])[keep] for name in dtype.names}
    count = int(np.asarray(columns[dtype.names[0]]).shape[0])
    if any(np.asarray(columns[name]).shape != (count,) for name in dtype.names):
        raise SplatFileError(path, "every property needs one value per Gaussian")
    if count == 0:
        raise SplatFileError(path, "nothing to write: zero Gaussians are kept")

    def write(handle):
        handle.write(_header_for(dtype, byte_order, comments, count))
        rows = np.empty(min(block, count), dtype=dtype)
        for start in range(0, count, block):
            stop = min(start + block, count)
            chunk = rows[: stop - start]
            for name in dtype.names:
                chunk[name] = columns[name][start:stop]
            chunk.tofile(handle)

    write_atomically(path, write)


def append_int_property(vertices: np.ndarray, name: str, values: np.ndarray, byte_order: str = "<") -> np.ndarray:
    """A copy of `vertices` with one more int32 property `name` appended last (e.g. `ms_label`)."""
    if name in vertices.dtype.names:
        raise SplatFileError(None, f"property '{name}' already exists")
    dtype = np.dtype(vertices.dtype.descr + [(name, f"{byte_order}i4")])
    out = np.empty(vertices.shape[0], dtype=dtype)
    for field_name in vertices.dtype.names:
        out[field_name] = vertices[field_name]
    out[name] = values
    return out
