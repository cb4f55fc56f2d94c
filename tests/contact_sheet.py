"""Contact sheets: image tiles in labelled rows, one PNG a person can look at (numpy only).

The demo shows what it did as one picture; no imaging library is needed (Blender's Python
has none): tiles are numpy arrays, labels use a built-in 5x7 bitmap font (upper case,
digits and common punctuation), and the sheet is written with core.images.write_png.
"""

from __future__ import annotations

import numpy as np

# 5x7 glyphs: seven rows, top first, each a 5-bit number whose highest bit is the leftmost pixel.
_GLYPHS = {
    "A": "0E 11 11 11 1F 11 11", "B": "1E 11 11 1E 11 11 1E", "C": "0E 11 10 10 10 11 0E",
    "D": "1C 12 11 11 11 12 1C", "E": "1F 10 10 1E 10 10 1F", "F": "1F 10 10 1E 10 10 10",
    "G": "0E 11 10 17 11 11 0F", "H": "11 11 11 1F 11 11 11", "I": "0E 04 04 04 04 04 0E",
    "J": "07 02 02 02 02 12 0C", "K": "11 12 14 18 14 12 11", "L": "10 10 10 10 10 10 1F",
    "M": "11 1B 15 15 11 11 11", "N": "11 11 19 15 13 11 11", "O": "0E 11 11 11 11 11 0E",
    "P": "1E 11 11 1E 10 10 10", "Q": "0E 11 11 11 15 12 0D", "R": "1E 11 11 1E 14 12 11",
    "S": "0F 10 10 0E 01 01 1E", "T": "1F 04 04 04 04 04 04", "U": "11 11 11 11 11 11 0E",
    "V": "11 11 11 11 11 0A 04", "W": "11 11 11 15 15 15 0A", "X": "11 11 0A 04 0A 11 11",
    "Y": "11 11 11 0A 04 04 04", "Z": "1F 01 02 04 08 10 1F",
    "0": "0E 11 13 15 19 11 0E", "1": "04 0C 04 04 04 04 0E", "2": "0E 11 01 02 04 08 1F",
    "3": "1F 02 04 02 01 11 0E", "4": "02 06 0A 12 1F 02 02", "5": "1F 10 1E 01 01 11 0E",
    "6": "06 08 10 1E 11 11 0E", "7": "1F 01 02 04 08 08 08", "8": "0E 11 11 0E 11 11 0E",
    "9": "0E 11 11 0F 01 02 0C",
    " ": "00 00 00 00 00 00 00", ".": "00 00 00 00 00 0C 0C", ",": "00 00 00 00 0C 04 08",
    ":": "00 0C 0C 00 0C 0C 00", "-": "00 00 00 1F 00 00 00", "+": "00 04 04 1F 04 04 00",
    "=": "00 00 1F 00 1F 00 00", "%": "18 19 02 04 08 13 03", "/": "00 01 02 04 08 10 00",
    "(": "02 04 08 08 08 04 02", ")": "08 04 02 02 02 04 08", "'": "0C 04 08 00 00 00 00",
    "<": "02 04 08 10 08 04 02", ">": "08 04 02 01 02 04 08", "?": "0E 11 01 02 04 00 04",
    "_": "00 00 00 00 00 00 1F", "#": "0A 0A 1F 0A 1F 0A 0A",
}  # fmt: skip
FONT = {ch: np.array([[(int(row, 16) >> (4 - x)) & 1 for x in range(5)] for row in rows.split()], bool)
        for ch, rows in _GLYPHS.items()}  # fmt: skip
GLYPH_W, GLYPH_H, ADVANCE = 5, 7, 6  # a glyph, and the step to the next one (one blank column)

SHEET_GREY = (38, 38, 38)
TEXT_COLOUR = (235, 235, 235)
HEADING_COLOUR = (255, 210, 110)


def text_width(text: str, scale: int) -> int:
    return max(0, (ADVANCE * len(text) - 1) * scale)


def draw_text(canvas: np.ndarray, x: int, y: int, text: str, scale: int = 2, colour=TEXT_COLOUR) -> None:
    """Stamp `text` (upper-cased; unknown characters as '?') with its top-left corner at (x, y),
    clipped to the canvas."""
    h, w = canvas.shape[:2]
    for i, ch in enumerate(text.upper()):
        glyph = np.repeat(np.repeat(FONT.get(ch, FONT["?"]), scale, axis=0), scale, axis=1)
        gx = x + i * ADVANCE * scale
        y0, y1, x0, x1 = max(y, 0), min(y + glyph.shape[0], h), max(gx, 0), min(gx + glyph.shape[1], w)
        if y0 < y1 and x0 < x1:
            canvas[y0:y1, x0:x1][glyph[y0 - y : y1 - y, x0 - gx : x1 - gx]] = colour


def as_rgb(image: np.ndarray) -> np.ndarray:
    """uint8 [H, W, 3] from a grey, bool, RGB or RGBA image (alpha dropped)."""
    image = np.asarray(image)
    if image.dtype == bool:
        image = image.astype(np.uint8) * 255
    if image.ndim == 2:
        image = image[:, :, None]
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[:, :, :3], dtype=np.uint8)


def difference(before: np.ndarray, after: np.ndarray, gain: float) -> np.ndarray:
    """|before - after| per pixel (largest channel) times `gain`, as a grey image."""
    diff = np.abs(as_rgb(before).astype(np.int16) - as_rgb(after).astype(np.int16)).max(axis=2)
    return np.clip(diff * gain, 0, 255).astype(np.uint8)


def half_size(image: np.ndarray) -> np.ndarray:
    """2x2 box filter: a smaller tile without aliasing."""
    image = as_rgb(image).astype(np.float32)
    h, w = image.shape[0] // 2 * 2, image.shape[1] // 2 * 2
    mean = (image[:h:2, :w:2] + image[1:h:2, :w:2] + image[:h:2, 1:w:2] + image[1:h:2, 1:w:2]) / 4
    return mean.round().astype(np.uint8)


class ContactSheet:
    """Rows of captioned tiles under headings, stacked top to bottom and padded to the widest.

    `scale` is the text size (2 = glyphs 10x14 pixels); captions longer than their tile are
    cut at the tile's width, so keep them short (a tile of 192 pixels holds 16 characters).
    """

    def __init__(self, scale: int = 2, gap: int = 8, background=SHEET_GREY):
        self.scale, self.gap, self.background = scale, gap, tuple(background)
        self._blocks: list[np.ndarray] = []

    def _canvas(self, height: int, width: int) -> np.ndarray:
        canvas = np.empty((height, width, 3), np.uint8)
        canvas[:] = self.background
        return canvas

    def heading(self, text: str, scale: int | None = None, colour=HEADING_COLOUR) -> None:
        """A line of text with room above it, to start a section."""
        scale = scale or self.scale
        block = self._canvas(GLYPH_H * scale + 2 * self.gap, text_width(text, scale) + 2 * self.gap)
        draw_text(block, self.gap, self.gap + self.gap // 2, text, scale, colour)
        self._blocks.append(block)

    def row(self, tiles, captions=None) -> None:
        tiles = [as_rgb(t) for t in tiles]
        captions = list(captions) if captions is not None else [""] * len(tiles)
        if len(captions) != len(tiles):
            raise ValueError(f"{len(tiles)} tiles but {len(captions)} captions")
        lines = max((len(c.split("\n")) for c in captions), default=0) if any(captions) else 0
        line_h = (GLYPH_H + 3) * self.scale
        top = lines * line_h + (self.gap // 2 if lines else 0)
        height = top + max(t.shape[0] for t in tiles) + self.gap
        width = self.gap + sum(t.shape[1] + self.gap for t in tiles)
        block = self._canvas(height, width)
        x = self.gap
        for tile, caption in zip(tiles, captions, strict=True):
            for j, line in enumerate(caption.split("\n") if caption else []):
                fit = line[: max(0, (tile.shape[1] // self.scale + 1) // ADVANCE)]
                draw_text(block[:, x : x + tile.shape[1]], 0, j * line_h, fit, self.scale)
            block[top : top + tile.shape[0], x : x + tile.shape[1]] = tile
            x += tile.shape[1] + self.gap
        self._blocks.append(block)

    def image(self) -> np.ndarray:
        """The sheet: uint8 [H, W, 3]."""
        if not self._blocks:
            raise ValueError("the contact sheet is empty")
        width = max(b.shape[1] for b in self._blocks)
        sheet = self._canvas(sum(b.shape[0] for b in self._blocks) + self.gap, width)
        y = self.gap // 2
        for block in self._blocks:
            sheet[y : y + block.shape[0], : block.shape[1]] = block
            y += block.shape[0]
        return sheet


def fewer_colours(image: np.ndarray, bits: int) -> np.ndarray:
    """Each channel rounded to `bits` bits (to the middle of its step): a smaller PNG that looks
    the same, for pictures kept in the repository."""
    image = as_rgb(image)
    drop = 8 - bits
    return ((image >> drop) << drop) | ((1 << drop) >> 1)
