"""PlayCanvas SOG (version 2) splat files: a `meta.json` plus lossless WebP images, as a
`.sog` zip bundle or a folder.

Each per-Gaussian image holds Gaussian i at texel i (rows top to bottom):
- `means`: two images, low and high bytes of 16-bit x y z between meta's mins and maxs of
  `sign(v) * ln(|v| + 1)`, the log transform undone on read.
- `quats`: "smallest three": r g b are `c / sqrt(2)` mapped to 0..255, alpha 252..255 names
  the largest of w x y z (rebuilt positive).
- `scales`: r g b index meta's 256-entry codebook of log-scales.
- `sh0`: r g b index the codebook of f_dc; alpha is sigmoid(opacity) x 255.
- `shN` (optional): `labels` (16 bits in r g) pick a palette row; the palette image keeps 64
  entries a row, each entry `coefficients` texels whose r g b index the SH codebook.

WebP is decoded by a real codec supplied by the caller (Blender's image loader, see
`scene/images.py`), never here; this module checks that every image is lossless (VP8L)
and of a size meta.json allows before anything is decoded, so a small file cannot make
us allocate gigabytes.
"""

from __future__ import annotations

import json
import struct
import zipfile
from pathlib import Path

import numpy as np

from .splat_io import SplatData, SplatFileError, decode_table, logits_from_alpha

MAX_META = 16 << 20
MAX_RATIO = 1024  # decoded bytes per stored WebP byte, at most
PALETTE_ROW = 64
SH_COEFFICIENTS = {1: 3, 2: 8, 3: 15}
MODEL_COMMENTS = {"antialiased": "SplatRenderMode: mip", "2dgs": "SplatRenderMode: 2dgs"}
_decoder = None


def set_webp_decoder(decode) -> None:
    """Register `decode(data: bytes, name: str) -> [H, W, 4] uint8` (top row first), or None."""
    global _decoder
    _decoder = decode


def webp_size(path: Path, name: str, data: bytes) -> tuple[int, int]:
    """(width, height) of a lossless WebP from its VP8L header; anything else is refused."""
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WEBP":
        raise SplatFileError(path, f"{name} is not a WebP image")
    offset = 12
    while offset + 8 <= len(data):
        kind, length = data[offset : offset + 4], struct.unpack_from("<I", data, offset + 4)[0]
        if kind == b"VP8L":
            if length < 5 or offset + 13 > len(data) or data[offset + 8] != 0x2F:
                raise SplatFileError(path, f"{name} has a damaged lossless WebP header")
            bits = struct.unpack_from("<I", data, offset + 9)[0]
            return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
        if kind in (b"VP8 ", b"ALPH"):
            raise SplatFileError(path, f"{name} is a lossy WebP; SOG images must be lossless")
        offset += 8 + length + (length & 1)
    raise SplatFileError(path, f"{name} holds no image data (truncated WebP?)")


class _Source:
    """The files of a SOG: members of a zip bundle or files beside meta.json."""

    def __init__(self, path: Path):
        self.path = path
        self.zip = None
        if path.is_dir():
            self.folder = path
        elif zipfile.is_zipfile(path):
            self.zip = zipfile.ZipFile(path)
            self.folder = None
        else:
            self.folder = path.parent
        self.meta_name = path.name if path.is_file() and self.zip is None else "meta.json"

    def read(self, name: str, limit: int) -> bytes:
        if "/" in name or "\\" in name or name in ("", ".", ".."):
            raise SplatFileError(self.path, f"meta.json names '{name}', which is not a file beside it")
        if self.zip is not None:
            try:
                info = self.zip.getinfo(name)
            except KeyError:
                raise SplatFileError(self.path, f"the bundle has no {name}") from None
            if info.file_size > limit:
                raise SplatFileError(self.path, f"{name} is {info.file_size:,} bytes, more than a SOG of this size needs")
            with self.zip.open(info) as handle:
                data = handle.read(limit + 1)
        else:
            file = self.folder / name
            if not file.is_file():
                raise SplatFileError(self.path, f"{name} is missing beside meta.json")
            if file.stat().st_size > limit:
                raise SplatFileError(self.path, f"{name} is {file.stat().st_size:,} bytes, more than a SOG of this size needs")
            data = file.read_bytes()
        if len(data) > limit:
            raise SplatFileError(self.path, f"{name} is larger than its zip entry says")
        return data

    def stored_bytes(self) -> int:
        """Bytes on disk: the bundle, or the files beside meta.json."""
        if self.zip is not None:
            return self.path.stat().st_size
        return sum(f.stat().st_size for f in self.folder.iterdir() if f.is_file())

    def close(self):
        if self.zip is not None:
            self.zip.close()


def _number_list(path: Path, meta: dict, key: str, field: str, length: int) -> np.ndarray:
    values = meta.get(key, {}).get(field) if isinstance(meta.get(key), dict) else None
    if not isinstance(values, list) or len(values) != length or not all(isinstance(v, int | float) for v in values):
        raise SplatFileError(path, f"meta.json {key}.{field} must be a list of {length} numbers")
    array = np.asarray(values, dtype=np.float64)
    if not np.isfinite(array).all():
        raise SplatFileError(path, f"meta.json {key}.{field} holds NaN or infinite values")
    return array


def _files(path: Path, meta: dict, key: str, count: int) -> list[str]:
    files = meta.get(key, {}).get("files") if isinstance(meta.get(key), dict) else None
    if not isinstance(files, list) or len(files) != count or not all(isinstance(f, str) for f in files):
        raise SplatFileError(path, f"meta.json {key}.files must name {count} image(s)")
    return files


def _read_meta(path: Path, source: _Source) -> dict:
    try:
        meta = json.loads(source.read(source.meta_name, MAX_META))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise SplatFileError(path, f"meta.json is not valid JSON ({err})") from None
    if not isinstance(meta, dict):
        raise SplatFileError(path, "meta.json does not hold a SOG description")
    version = meta.get("version")
    if version is None and "means" in meta:
        raise SplatFileError(path, "SOG version 1 is not supported; re-save it with splat-transform (version 2)")
    if version != 2:
        raise SplatFileError(path, f"SOG version {version} is not supported (version 2 is)")
    count = meta.get("count")
    if not isinstance(count, int) or isinstance(count, bool) or count <= 0:
        raise SplatFileError(path, "meta.json count must be a positive number of Gaussians")
    return meta


def _decode(path: Path, source: _Source, name: str, decode, texels: tuple[int, int], budget: dict) -> np.ndarray:
    """One image [H * W, 4] uint8, after checking it is lossless and no larger than allowed."""
    data = source.read(name, budget["file_limit"])
    width, height = webp_size(path, name, data)
    low, high = texels
    if not low <= width * height <= high:
        raise SplatFileError(
            path, f"{name} is {width}x{height}, not the size meta.json's count calls for ({low:,} to {high:,} texels)"
        )
    budget["decoded"] += 4 * width * height
    if budget["decoded"] > MAX_RATIO * budget["stored"] + (64 << 20):
        raise SplatFileError(path, "the images would decode to far more data than the file holds (a decompression bomb?)")
    try:
        pixels = np.asarray(decode(data, name))
    except ValueError as err:
        raise SplatFileError(path, f"{name} cannot be decoded ({err})") from None
    if pixels.dtype != np.uint8 or pixels.shape != (height, width, 4):
        raise SplatFileError(path, f"{name} decoded to {pixels.dtype} {pixels.shape}, not {height}x{width} RGBA bytes")
    return pixels.reshape(-1, 4)


def _quats(path: Path, texels: np.ndarray) -> np.ndarray:
    """[N, 4] float32 wxyz from smallest-three texels."""
    tag = texels[:, 3].astype(np.intp) - 252
    if (tag < 0).any():
        raise SplatFileError(path, "quats.webp holds a rotation without a valid largest-component tag (corrupt file)")
    stored = (texels[:, :3].astype(np.float64) / 255.0 * 2.0 - 1.0) / np.sqrt(2.0)
    out = np.empty((texels.shape[0], 4))
    rows = np.arange(texels.shape[0])
    others = np.array([[1, 2, 3], [0, 2, 3], [0, 1, 3], [0, 1, 2]])[tag]
    out[rows[:, None], others] = stored
    out[rows, tag] = np.sqrt(np.maximum(0.0, 1.0 - np.einsum("ij,ij->i", stored, stored)))
    return out


def _palette(path: Path, meta: dict, source: _Source, decode, count: int, budget: dict) -> tuple[np.ndarray, np.ndarray]:
    """(labels [N], palette [K, 3 * M] channel-major f_rest) of the optional SH."""
    shn = meta["shN"]
    bands = shn.get("bands") if isinstance(shn, dict) else None
    entries = shn.get("count") if isinstance(shn, dict) else None
    if bands not in SH_COEFFICIENTS or not isinstance(entries, int) or not 0 < entries <= 1 << 16:
        raise SplatFileError(path, "meta.json shN needs bands 1 to 3 and a palette count of 1 to 65536")
    codebook = _number_list(path, meta, "shN", "codebook", 256)
    centroid_file, label_file = _files(path, meta, "shN", 2)
    m = SH_COEFFICIENTS[bands]
    rows = -(-entries // PALETTE_ROW)
    centroids = _decode(path, source, centroid_file, decode, (m * PALETTE_ROW, m * PALETTE_ROW * rows), budget)
    width = PALETTE_ROW * m
    if centroids.shape[0] % width:
        raise SplatFileError(path, f"{centroid_file} must be {width} texels wide for SH degree {bands}")
    usable = min(entries, centroids.shape[0] // m)
    # palette entry e, coefficient j sits at row e // 64, column (e % 64) * m + j: e * m + j in texel order
    indices = centroids[: usable * m, :3].reshape(usable, m, 3).transpose(0, 2, 1).reshape(usable, 3 * m)
    palette = codebook.astype(np.float32)[indices]
    labels = _decode(path, source, label_file, decode, budget["texels"], budget)[:count]
    labels = labels[:, 0].astype(np.int64) | (labels[:, 1].astype(np.int64) << 8)
    if labels.max() >= usable:
        raise SplatFileError(path, f"an SH label points past the {usable:,}-entry palette (corrupt file)")
    return labels, palette


def read_sog(path, decode_webp=None) -> SplatData:
    """Read a SOG bundle (.sog), folder or meta.json into the INRIA layout, float32, in file order."""
    path = Path(path)
    decode = decode_webp or _decoder
    if decode is None:
        raise SplatFileError(path, "SOG images are WebP and no WebP decoder is available (open it from Blender)")
    try:
        source = _Source(path)
    except zipfile.BadZipFile as err:
        raise SplatFileError(path, f"damaged zip bundle ({err})") from None
    try:
        return _read(path, source, decode)
    except zipfile.BadZipFile as err:
        raise SplatFileError(path, f"damaged zip bundle ({err})") from None
    finally:
        source.close()


def _read(path: Path, source: _Source, decode) -> SplatData:
    meta = _read_meta(path, source)
    count = int(meta["count"])
    stored = source.stored_bytes()
    # Per-Gaussian images need a texel each and, laid out near-square, not many more.
    budget = {"texels": (count, 2 * count + 65536), "decoded": 0, "stored": stored, "file_limit": max(stored, 1)}
    means_lo, means_hi = (_decode(path, source, name, decode, budget["texels"], budget)[:count] for name in _files(path, meta, "means", 2))
    quats = _decode(path, source, _files(path, meta, "quats", 1)[0], decode, budget["texels"], budget)[:count]
    scales = _decode(path, source, _files(path, meta, "scales", 1)[0], decode, budget["texels"], budget)[:count]
    sh0 = _decode(path, source, _files(path, meta, "sh0", 1)[0], decode, budget["texels"], budget)[:count]
    degree, labels, palette = 0, None, None
    if meta.get("shN") is not None:
        labels, palette = _palette(path, meta, source, decode, count, budget)
        degree = {9: 1, 24: 2, 45: 3}[palette.shape[1]]
    low, high = _number_list(path, meta, "means", "mins", 3), _number_list(path, meta, "means", "maxs", 3)
    span = np.where(high - low == 0, 1.0, high - low)
    scale_book = _number_list(path, meta, "scales", "codebook", 256).astype(np.float32)
    colour_book = _number_list(path, meta, "sh0", "codebook", 256).astype(np.float32)

    def fill(rows, a, b, column):
        encoded = (means_lo[a:b, :3].astype(np.int64) | (means_hi[a:b, :3].astype(np.int64) << 8)) / 65535.0
        logged = low + span * encoded
        rows[:, 0:3] = np.sign(logged) * np.expm1(np.abs(logged))
        rows[:, column["rot_0"] : column["rot_0"] + 4] = _quats(path, quats[a:b])
        rows[:, column["scale_0"] : column["scale_0"] + 3] = scale_book[scales[a:b, :3]]
        rows[:, column["f_dc_0"] : column["f_dc_0"] + 3] = colour_book[sh0[a:b, :3]]
        rows[:, column["opacity"]] = logits_from_alpha(sh0[a:b, 3] / 255.0)
        if degree:
            np.take(palette, labels[a:b], axis=0, out=rows[:, column["f_rest_0"] : column["f_rest_0"] + palette.shape[1]])

    vertices = decode_table(count, degree, fill)
    comments = ["converted from PlayCanvas SOG by MaskSplat"]
    if meta.get("model") in MODEL_COMMENTS:
        comments.append(MODEL_COMMENTS[meta["model"]])
    return SplatData(vertices, degree, str(path), "<", comments)
