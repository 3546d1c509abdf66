"""Column labels over a picture grid (samples, validation, the demo's comparison), so a reader
knows which column is the input, which the teacher, the student, the target."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

LABEL_HEIGHT = 14  # px of the white strip above the grid


def _fit(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """``text``, cut (with "..") until it fits ``width`` px."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "..", font=font) > width:
        text = text[:-1]
    return text + ".." if text else ""


def add_column_labels(grid: Image.Image, names: Sequence[str], tile_width: int,
                      padding: int) -> Image.Image:
    """``grid`` (columns of ``tile_width`` px, ``padding`` px apart) with a ``LABEL_HEIGHT`` px
    strip above it naming each column, centred (cut to the column's width)."""
    font = ImageFont.load_default()
    labelled = Image.new("RGB", (grid.width, grid.height + LABEL_HEIGHT), "white")
    labelled.paste(grid, (0, LABEL_HEIGHT))
    draw = ImageDraw.Draw(labelled)
    for c, name in enumerate(names):
        text = _fit(draw, str(name), font, tile_width)
        left = c * (tile_width + padding) + (tile_width - draw.textlength(text, font=font)) / 2
        draw.text((left, 1), text, fill="black", font=font)
    return labelled
