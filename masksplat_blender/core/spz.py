"""Niantic SPZ splat files: read versions 2 to 4, write version 3.

Layout (github.com/nianticlabs/spz, `load-spz.cc`): a header (magic `NGSP`, version,
point count, SH degree, fractional bits, flags) and six per-point streams in this
order: positions (3 x 24-bit signed fixed point, `fractionalBits` fraction bits),
alphas (sigmoid x 255), colours (f_dc x 0.15 x 255 + 127.5), scales ((log + 10) x 16),
rotations and SH ((x x 128 + 128) per coefficient, RGB interleaved per coefficient).
Versions 2 and 3 gzip header and streams as one stream (16-byte header); version 4 has a
32-byte plain header, optional extension records, a table of contents and one zstd
stream per attribute. Rotations are the quaternion's x, y, z as bytes (version 2) or
"smallest three": 2 bits naming the largest component, three 10-bit signed magnitudes
scaled by 1/sqrt(2) (version 3 and later).

Coordinate system: SPZ's README calls the stored frame RUB (three.js), but Niantic's own
`ply_to_spz`, PlayCanvas splat-transform and SuperSplat store a PLY's values unchanged
(coordinate system UNSPECIFIED), so in practice SPZ holds the PLY (RDF) frame. MaskSplat
does the same: values are read and written unconverted, and an SPZ and a PLY of the same
scene import alike. A file that names its frame with Adobe's coordinate-system extension
(type 0xADBE0003) is converted from that frame to RDF on import. Captures stored as RUB
without the extension (e.g. some Scaniverse exports) come in upside down: use the import's
Up Axis option.

Version 3 is written: every SPZ reader since smallest-three rotations (mid 2025) reads it,
where version 4 needs a 2026 reader, and gzip is in every Python; version 4 is about 8%
smaller. Reading version 4 takes zstd from Python 3.14's standard library, the
`zstandard` module (shipped with Blender from blender.org and with the bpy module) or the
system's libzstd (which every Linux Blender links), so no wheel is bundled: a cp313 wheel
would make Blender refuse the extension on every other Python version.
"""

from __future__ import annotations

import os
import struct
import threading
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from .splat_io import SplatData, SplatFileError, decode_table, logits_from_alpha, sigmoid, write_atomically
from .transform import apply_transform_to_vertices

MAGIC = b"NGSP"
WRITE_VERSION = 3
FLAG_ANTIALIASED, FLAG_EXTENSIONS = 0x1, 0x2
COLOR_SCALE = 0.15
SH_BITS = (5, 4)  # degree-1 coefficients, then the rest (the reference encoder's defaults)
MAX_RATIO = 1024  # refuse headers promising more than this many bytes per compressed byte
MAX_EXTENSIONS = 1 << 20
INFLATE_STEP = 4 << 20
COORDINATE_EXTENSION = 0xADBE0003
ANTIALIAS_COMMENT = "SplatRenderMode: mip"  # Brush's and splat-transform's PLY spelling
# SPZ coordinate-system codes (spz::CoordinateSystem) -> axis directions of x, y, z.
COORDINATE_SYSTEMS = {
    1: "LDB", 2: "RDB", 3: "LUB", 4: "RUB", 5: "LDF", 6: "RDF", 7: "LUF", 8: "RUF",
    9: "LFD", 10: "RFD", 11: "LFU", 12: "RFU", 13: "LBD", 14: "RBD", 15: "LBU", 16: "RBU",
}  # fmt: skip
LOSSES = (
    "positions become 24-bit fixed point ({step} unit steps), opacity, colour and log-scales 8 bits, "
    "rotations 3 x 10 bits and SH coefficients 5 (degree 1) or 4 bits"
)


def _sh_count(degree: int) -> int:
    return (degree + 1) ** 2 - 1


def _stream_sizes(count: int, degree: int, version: int) -> list[int]:
    """Bytes of positions, alphas, colours, scales, rotations, SH."""
    return [9 * count, count, 3 * count, 3 * count, (3 if version == 2 else 4) * count, 3 * _sh_count(degree) * count]


def _errors_as_value_error(decompress, error):
    def guarded(blob: bytes, size: int) -> bytes:
        try:
            return decompress(blob, size)
        except error as err:
            raise ValueError(str(err)) from None

    return guarded


def _stdlib_zstd():
    from compression import zstd  # Python 3.14+

    return _errors_as_value_error(lambda blob, size: zstd.ZstdDecompressor().decompress(blob, max_length=size), zstd.ZstdError)


def _zstandard():
    import zstandard  # bundled with Blender from blender.org (and a dependency of the bpy module)

    return _errors_as_value_error(
        lambda blob, size: zstandard.ZstdDecompressor().decompress(blob, max_output_size=size), zstandard.ZstdError
    )


def _libzstd():
    """The system's libzstd through ctypes: every Linux Blender build links it, whatever its Python has."""
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("zstd")
    if name is None:
        raise ImportError("no libzstd")
    lib = ctypes.CDLL(name)
    lib.ZSTD_decompress.restype = ctypes.c_size_t
    lib.ZSTD_decompress.argtypes = (ctypes.c_void_p, ctypes.c_size_t, ctypes.c_char_p, ctypes.c_size_t)
    lib.ZSTD_isError.restype = ctypes.c_uint
    lib.ZSTD_isError.argtypes = (ctypes.c_size_t,)
    lib.ZSTD_getErrorName.restype = ctypes.c_char_p
    lib.ZSTD_getErrorName.argtypes = (ctypes.c_size_t,)

    def decompress(blob: bytes, size: int) -> bytes:
        out = bytearray(size)
        written = lib.ZSTD_decompress((ctypes.c_char * size).from_buffer(out) if size else None, size, blob, len(blob))
        if lib.ZSTD_isError(written):
            raise ValueError(lib.ZSTD_getErrorName(written).decode())
        return bytes(out[:written]) if written != size else out

    return decompress


def zstd_decompressors() -> dict:
    """The zstd decoders this Python can use, best first: {name: decompress(blob, size) -> bytes}."""
    found = {}
    for name, make in (("compression.zstd", _stdlib_zstd), ("zstandard", _zstandard), ("libzstd", _libzstd)):
        try:
            found[name] = make()
        except (ImportError, OSError, AttributeError):
            continue
    return found


def _zstd_decompress(path: Path, blob: bytes, size: int, decompress) -> bytes:
    try:
        return decompress(blob, size)
    except ValueError as err:
        raise SplatFileError(path, f"corrupt zstd stream ({err})") from None


def _header_fields(path: Path, raw: bytes) -> tuple[int, int, int, int, int]:
    """(version, count, sh_degree, fractional_bits, flags) of an NGSP header, checked."""
    if len(raw) < 16:
        raise SplatFileError(path, "truncated SPZ header")
    magic, version, count, degree, fractional, flags = struct.unpack_from("<4sIIBBB", raw)
    if magic != MAGIC:
        raise SplatFileError(path, "not an SPZ file (no NGSP header)")
    if not 2 <= version <= 4:
        raise SplatFileError(path, f"SPZ version {version} is not supported (versions 2, 3 and 4 are)")
    if count == 0:
        raise SplatFileError(path, "the file holds zero Gaussians")
    if degree > 3:
        raise SplatFileError(path, f"SH degree {degree} is not supported (degree 0 to 3 are)")
    if fractional > 23:
        raise SplatFileError(path, f"{fractional} fractional bits for 24-bit positions is not a valid SPZ header")
    return version, count, degree, fractional, flags


def _check_count(path: Path, count: int, compressed_size: int) -> None:
    """Refuse a decompression bomb before allocating: at least 9 bytes a Gaussian, compressed at most 1024:1."""
    if count > compressed_size * MAX_RATIO // 9:
        raise SplatFileError(
            path, f"the header promises {count:,} Gaussians, more than {compressed_size:,} compressed bytes can hold"
        )


class _Inflation:
    """Inflates the gzip body of a version 2/3 file on a thread into one buffer. Decoding waits
    only for the bytes each block needs, so unpacking overlaps inflating (one gzip stream cannot
    be split, and inflating alone takes as long as importing a PLY)."""

    def __init__(self, path: Path, inflater, count: int, size: int, with_extensions: bool):
        self.path, self.count, self.size = path, count, size
        self.body = np.empty(size, dtype=np.uint8)
        self.ready, self.done, self.error, self.extensions = 0, False, None, b""
        self.changed = threading.Condition()
        self.thread = threading.Thread(target=self._run, args=(inflater, with_extensions), daemon=True)
        self.thread.start()

    def _run(self, inflater, with_extensions: bool) -> None:
        try:
            while self.ready < self.size:
                chunk = inflater.decompress(inflater.unconsumed_tail, min(INFLATE_STEP, self.size - self.ready))
                if not chunk:
                    break
                self.body[self.ready : self.ready + len(chunk)] = np.frombuffer(chunk, dtype=np.uint8)
                with self.changed:
                    self.ready += len(chunk)
                    self.changed.notify_all()
            if with_extensions and self.ready == self.size:
                self.extensions = inflater.decompress(inflater.unconsumed_tail, MAX_EXTENSIONS)
        except zlib.error as err:
            self.error = err
        finally:
            with self.changed:
                self.done = True
                self.changed.notify_all()

    def wait(self, end: int) -> None:
        """Return once the first `end` bytes are there; raise if the file cannot give them."""
        with self.changed:
            self.changed.wait_for(lambda: self.ready >= end or self.done)
        if self.ready < end:
            if self.error is not None:
                raise SplatFileError(self.path, f"corrupt gzip data ({self.error})")
            raise SplatFileError(
                self.path, f"truncated: {self.count:,} Gaussians need {self.size:,} bytes, the file holds {self.ready:,}"
            )

    def extension_records(self) -> bytes:
        self.wait(self.size)
        self.thread.join()
        if self.error is not None:
            raise SplatFileError(self.path, f"corrupt gzip data ({self.error})")
        return self.extensions


def _read_legacy(path: Path, raw: bytes) -> tuple[tuple, _Inflation]:
    """Versions 2 and 3: one gzip stream of header + streams (+ extension records)."""
    inflater = zlib.decompressobj(wbits=31)
    try:
        head = inflater.decompress(raw, 16)
    except zlib.error as err:
        raise SplatFileError(path, f"corrupt gzip data ({err})") from None
    fields = _header_fields(path, head)
    version, count, degree = fields[:3]
    if version == 4:
        raise SplatFileError(path, "a gzip-compressed SPZ cannot be version 4")
    _check_count(path, count, len(raw))
    size = sum(_stream_sizes(count, degree, version))
    return fields, _Inflation(path, inflater, count, size, bool(fields[4] & FLAG_EXTENSIONS))


def _read_ngsp(path: Path, raw: bytes) -> tuple[tuple, list[bytes], bytes]:
    """Version 4: plain 32-byte header, extension records, table of contents, zstd streams."""
    if len(raw) < 32:
        raise SplatFileError(path, "truncated SPZ header")
    fields = _header_fields(path, raw)
    version, count, degree = fields[:3]
    if version != 4:
        raise SplatFileError(path, f"an uncompressed NGSP header must be version 4, not {version}")
    _check_count(path, count, len(raw))
    streams, toc = struct.unpack_from("<BI", raw, 15)
    sizes = [size for size in _stream_sizes(count, degree, version) if size]
    if streams != len(sizes):
        raise SplatFileError(path, f"{streams} attribute streams where SH degree {degree} needs {len(sizes)}")
    start = toc + 16 * streams
    if toc < 32 or start > len(raw):
        raise SplatFileError(path, "truncated: the table of contents lies past the end of the file")
    blobs = []
    for i, expected in enumerate(sizes):
        compressed, uncompressed = struct.unpack_from("<QQ", raw, toc + 16 * i)
        if uncompressed != expected:
            raise SplatFileError(path, f"stream {i} holds {uncompressed:,} bytes where {count:,} Gaussians need {expected:,}")
        if start + compressed > len(raw):
            raise SplatFileError(path, f"truncated: stream {i} runs past the end of the file")
        blobs.append(raw[start : start + compressed])
        start += compressed
    decoders = zstd_decompressors()
    if not decoders:
        raise SplatFileError(
            path, "SPZ version 4 is zstd-compressed and this system has no zstd library; convert it to SPZ version 3"
        )
    decompress = next(iter(decoders.values()))
    with ThreadPoolExecutor(max_workers=min(len(blobs), os.cpu_count() or 1)) as pool:  # zstd frees the GIL
        out = list(pool.map(lambda job: _zstd_decompress(path, *job, decompress), zip(blobs, sizes, strict=True)))
    for i, (stream, expected) in enumerate(zip(out, sizes, strict=True)):
        if len(stream) != expected:
            raise SplatFileError(path, f"stream {i} decompresses to {len(stream):,} bytes, not {expected:,}")
    out += [b""] * (6 - len(out))
    extensions = raw[32:toc] if fields[4] & FLAG_EXTENSIONS else b""
    return fields, out, extensions


def _coordinate_system(path: Path, records: bytes) -> str | None:
    """The frame named by a coordinate-system extension record, if any (others are skipped)."""
    offset, system = 0, None
    while offset + 8 <= len(records):
        kind, length = struct.unpack_from("<II", records, offset)
        payload = records[offset + 8 : offset + 8 + length]
        if len(payload) < length:
            raise SplatFileError(path, "truncated SPZ extension record")
        if kind == COORDINATE_EXTENSION and length >= 4:
            code = struct.unpack_from("<I", payload)[0]
            if code and code not in COORDINATE_SYSTEMS:
                raise SplatFileError(path, f"unknown SPZ coordinate system {code}")
            system = COORDINATE_SYSTEMS.get(code, "RUB")  # UNSPECIFIED means RUB here, as in the reference
        offset += 8 + length
    return system


def frame_to_rdf(system: str) -> np.ndarray:
    """3x3 signed permutation taking coordinates in `system` (e.g. "RUB") to RDF."""
    directions = {"R": (0, 1), "L": (0, -1), "D": (1, 1), "U": (1, -1), "F": (2, 1), "B": (2, -1)}
    matrix = np.zeros((3, 3))
    for column, letter in enumerate(system):
        row, sign = directions[letter]
        matrix[row, column] = sign
    return matrix


def convert_frame(vertices: np.ndarray, sh_degree: int, system: str) -> np.ndarray:
    """Gaussians stored in `system` re-expressed in RDF: positions, rotations, scales and SH.

    A mirrored frame (a left-handed one such as RUF) is a rotation followed by the point
    inversion p -> -p, which keeps rotations and scales and flips odd SH bands.
    """
    linear = frame_to_rdf(system)
    mirrored = np.linalg.det(linear) < 0
    matrix = np.eye(4)
    matrix[:3, :3] = -linear if mirrored else linear
    out = apply_transform_to_vertices(vertices, sh_degree, matrix)
    if mirrored:
        for name in ("x", "y", "z"):
            out[name] = -out[name]
        m = _sh_count(sh_degree)
        for band in (1, 3):
            for k in range(band * band - 1, min((band + 1) ** 2 - 1, m)):
                for channel in range(3):
                    out[f"f_rest_{channel * m + k}"] = -out[f"f_rest_{channel * m + k}"]
    return out


def _unpack_rotations(packed: np.ndarray, version: int) -> np.ndarray:
    """[N, 4] float32 wxyz from first-three (version 2) or smallest-three bytes."""
    count = packed.shape[0] // (3 if version == 2 else 4)
    if version == 2:
        xyz = packed.reshape(count, 3).astype(np.float32) / np.float32(127.5) - np.float32(1.0)
        w = np.sqrt(np.maximum(np.float32(0.0), 1.0 - np.einsum("ij,ij->i", xyz, xyz)))
        return np.concatenate([w[:, None], xyz], axis=1)
    word = packed.view("<u4")
    fields = np.stack([(word >> shift) & 1023 for shift in (0, 10, 20)], axis=1)  # last stored component first
    values = _SMALLEST_THREE[fields]
    largest = (word >> 30).astype(np.intp)
    # Stored components fill the three indices other than `largest`, highest index first.
    slots = np.array([[3, 2, 1], [3, 2, 0], [3, 1, 0], [2, 1, 0]])[largest]
    xyzw = np.empty((count, 4), dtype=np.float32)
    rows = np.arange(count)[:, None]
    xyzw[rows, slots] = values
    xyzw[rows[:, 0], largest] = np.sqrt(np.maximum(np.float32(0.0), np.float32(1.0) - np.einsum("ij,ij->i", values, values)))
    return xyzw[:, [3, 0, 1, 2]]


# 10-bit smallest-three field (sign bit 9, magnitude 0..511) -> float32 value, as the reference decodes it.
_SMALLEST_THREE = np.float32(np.sqrt(0.5)) * (np.arange(1024) & 511).astype(np.float32) / np.float32(511.0)
_SMALLEST_THREE[512:] *= -1


def read_spz(path) -> SplatData:
    """Read an SPZ file (version 2, 3 or 4) into the INRIA layout, float32."""
    path = Path(path)
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        fields, inflation = _read_legacy(path, raw)
        sizes = _stream_sizes(fields[1], fields[2], fields[0])
        starts = np.cumsum([0, *sizes])
        streams = [inflation.body[starts[i] : starts[i + 1]] for i in range(6)]
        wait, extension_records = inflation.wait, inflation.extension_records
    else:
        fields, blobs, extensions = _read_ngsp(path, raw)
        streams = [np.frombuffer(blob, dtype=np.uint8) for blob in blobs]
        starts = None

        def wait(end):
            return None

        def extension_records():
            return extensions

    version, count, degree, fractional, flags = fields
    positions, alphas, colours, scales, rotations, sh = streams
    step = np.float32(1.0 / (1 << fractional))
    colour_lut = (np.arange(256, dtype=np.float32) / np.float32(255.0) - np.float32(0.5)) / np.float32(COLOR_SCALE)
    sh_lut = (np.arange(256, dtype=np.float32) - np.float32(128.0)) / np.float32(128.0)
    m, width = _sh_count(degree), 3 if version == 2 else 4

    def fill(rows, a, b, column):
        if starts is not None:  # the last bytes this block needs: its SH (or rotations)
            wait(int(starts[5] + 3 * m * b) if m else int(starts[4] + width * b))
        n = b - a
        fixed = positions[9 * a : 9 * b].reshape(n, 3, 3).astype(np.int32)
        fixed = fixed[:, :, 0] | (fixed[:, :, 1] << 8) | (fixed[:, :, 2] << 16)
        rows[:, 0:3] = ((fixed ^ 0x800000) - 0x800000).astype(np.float32) * step  # sign-extended 24 bits
        rows[:, column["opacity"]] = logits_from_alpha(alphas[a:b] / 255.0)
        rows[:, column["f_dc_0"] : column["f_dc_0"] + 3] = colour_lut[colours[3 * a : 3 * b].reshape(n, 3)]
        rows[:, column["scale_0"] : column["scale_0"] + 3] = scales[3 * a : 3 * b].reshape(n, 3).astype(np.float32) / 16.0 - 10.0
        rows[:, column["rot_0"] : column["rot_0"] + 4] = _unpack_rotations(rotations[width * a : width * b], version)
        if m:
            rest = rows[:, column["f_rest_0"] : column["f_rest_0"] + 3 * m].reshape(n, 3, m).transpose(0, 2, 1)
            np.take(sh_lut, sh[3 * m * a : 3 * m * b].reshape(n, m, 3), out=rest)  # channel-major in the table

    vertices = decode_table(count, degree, fill)
    comments = [f"converted from SPZ version {version} by MaskSplat"]
    if flags & FLAG_ANTIALIASED:
        comments.append(ANTIALIAS_COMMENT)
    extensions = extension_records()
    system = _coordinate_system(path, extensions) if extensions else None
    if system not in (None, "RDF"):
        vertices = convert_frame(vertices, degree, system)
        comments.append(f"converted from the SPZ's {system} coordinate system to RDF")
    return SplatData(vertices, degree, str(path), "<", comments)


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """C's std::round (halves away from zero), which the reference encoder uses."""
    return np.copysign(np.floor(np.abs(x) + 0.5), x)


def _to_byte(x: np.ndarray) -> np.ndarray:
    return np.clip(_round_half_away(x), 0, 255).astype(np.uint8)


def _pack_rotations(quats_wxyz: np.ndarray) -> np.ndarray:
    """Smallest-three: [N] little-endian uint32 bytes, as `packQuaternionSmallestThree`."""
    q = quats_wxyz.astype(np.float32)[:, [1, 2, 3, 0]]  # xyzw
    norm = np.sqrt(np.einsum("ij,ij->i", q, q))
    with np.errstate(invalid="ignore", divide="ignore"):
        q = q / norm[:, None]
    q = np.where(norm[:, None] > 0, q, np.array([0, 0, 0, 1], dtype=np.float32))
    largest = np.argmax(np.abs(q), axis=1)
    rows = np.arange(q.shape[0])
    negate = q[rows, largest] < 0
    word = largest.astype(np.uint32)
    for i in range(4):
        skip = largest == i
        negbit = ((q[:, i] < 0) ^ negate).astype(np.uint32)
        magnitude = (np.float32(511.0) * (np.abs(q[:, i]) / np.float32(np.sqrt(0.5))) + np.float32(0.5)).astype(np.uint32)
        word = np.where(skip, word, (word << 10) | (negbit << 9) | np.minimum(magnitude, 511))
    return word.astype("<u4").view(np.uint8)


def _quantise_sh(values: np.ndarray, bits: int) -> np.ndarray:
    bucket = 1 << (8 - bits)
    q = _round_half_away(values * np.float32(128.0)).astype(np.int64) + 128
    q = (q + bucket // 2) // bucket * bucket
    return np.clip(q, 0, 255).astype(np.uint8)


def _fractional_bits(path: Path, means: np.ndarray) -> int:
    """12 (1/4096 steps) unless positions need more range: the 24-bit field never wraps."""
    reach = float(np.abs(means).max())
    for bits in range(12, -1, -1):
        if reach * (1 << bits) < (1 << 23) - 1:
            return bits
    raise SplatFileError(path, f"positions reach {reach:,.0f} units, beyond SPZ's 24-bit range")


def _write_gzip(handle, payload: bytes, piece: int = 4 << 20) -> None:
    """gzip `payload` as the reference does (level 6), pieces deflated in parallel threads.

    Each piece is raw deflate primed with the 32 KB before it and ends on a sync flush (the
    last one finishes), so the pieces join into one valid deflate stream, as pigz makes them.
    """
    starts = range(0, len(payload), piece)

    def deflate(start: int) -> bytes:
        window = payload[max(0, start - 32768) : start]
        squeezer = zlib.compressobj(6, zlib.DEFLATED, -15, 9, zdict=window) if window else zlib.compressobj(6, zlib.DEFLATED, -15, 9)
        last = start + piece >= len(payload)
        return squeezer.compress(payload[start : start + piece]) + squeezer.flush(zlib.Z_FINISH if last else zlib.Z_SYNC_FLUSH)

    handle.write(b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff")  # gzip, deflate, no name, mtime 0, unknown OS
    with ThreadPoolExecutor(max_workers=os.cpu_count() or 1) as pool:  # zlib frees the GIL
        for block in pool.map(deflate, starts):
            handle.write(block)
    handle.write(struct.pack("<II", zlib.crc32(payload), len(payload) & 0xFFFFFFFF))


def write_spz(path, data: SplatData) -> str:
    """Write `data` as SPZ version 3 (gzip); returns what the format loses."""
    path = Path(path)
    degree, count = data.sh_degree, data.count
    means = data.means()
    fractional = _fractional_bits(path, means)
    fixed = _round_half_away(means * np.float32(1 << fractional)).astype(np.int32)
    positions = fixed.astype("<i4").view(np.uint8).reshape(count, 3, 4)[:, :, :3]
    alphas = _to_byte(sigmoid(data.opacity_logits()).astype(np.float32) * np.float32(255.0))
    colours = _to_byte(data.f_dc() * np.float32(COLOR_SCALE * 255.0) + np.float32(127.5))
    scales = _to_byte((data.log_scales() + np.float32(10.0)) * np.float32(16.0))
    rotations = _pack_rotations(data.quats_wxyz())
    parts = [positions, alphas, colours, scales, rotations]
    if degree:
        rest = data.f_rest()  # [N, M, 3]: coefficient-major, RGB inside, as SPZ stores it
        parts += [_quantise_sh(rest[:, :3], SH_BITS[0]), _quantise_sh(rest[:, 3:], SH_BITS[1])]
        parts[-2:] = [np.concatenate(parts[-2:], axis=1)]
    antialiased = any(c.strip().lower() == ANTIALIAS_COMMENT.lower() for c in data.comments)
    header = struct.pack("<4sIIBBBB", MAGIC, WRITE_VERSION, count, degree, fractional, FLAG_ANTIALIASED * antialiased, 0)
    payload = [header] + [np.ascontiguousarray(part).tobytes() for part in parts]
    write_atomically(path, lambda handle: _write_gzip(handle, b"".join(payload)))
    step = f"1/{1 << fractional}" if fractional else "1"
    return LOSSES.format(step=step)
