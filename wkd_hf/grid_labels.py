"""Column labels over a picture grid (samples, validation, the demo's comparison), so a reader
knows which column is the input, which the teacher, the student, the target."""

from __future__ import annotations

from collections.abc import Sequence

from PIL import Image, ImageDraw, ImageFont

FONT_SIZE = 11  # px: Pillow's built-in font (no font file needed)
LINE_HEIGHT = 13  # px per line of text
MAX_LINES = 2  # a long name wraps onto a second line before it is cut
LABEL_HEIGHT = MAX_LINES * LINE_HEIGHT + 3  # px of the white strip above the grid


def _font() -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    return ImageFont.load_default(size=FONT_SIZE)


def _word_gap(draw: ImageDraw.ImageDraw, font) -> float:
    """Space between words: the font's own space is ~2 px at this size, which reads as none."""
    return max(draw.textlength(" ", font=font), FONT_SIZE * 0.4)


def _cut(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> str:
    """``text``, cut (with "..") until it fits ``width`` px."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "..", font=font) > width:
        text = text[:-1]
    return text + ".." if text else ""


def wrap_label(draw: ImageDraw.ImageDraw, text: str, font, width: int) -> list[list[str]]:
    """``text`` as at most ``MAX_LINES`` lines of words, each line at most ``width`` px wide
    (words :func:`_word_gap` apart); what does not fit is cut with ".."."""
    gap, lines, cut = _word_gap(draw, font), [[]], False
    for word in text.split():
        if lines[-1] and _line_width(draw, lines[-1] + [word], font, gap) > width:
            if len(lines) == MAX_LINES:
                cut = True
                break
            lines.append([])
        lines[-1].append(word)
    last = lines[-1]
    if cut:
        last[-1] += ".."
        while len(last) > 1 and _line_width(draw, last, font, gap) > width:
            last[-2:] = [last[-2] + ".."]
    return [[_cut(draw, word, font, width) for word in line] for line in lines if line]


def _line_width(draw: ImageDraw.ImageDraw, words: list[str], font, gap: float) -> float:
    return sum(draw.textlength(w, font=font) for w in words) + gap * (len(words) - 1)


def add_column_labels(grid: Image.Image, names: Sequence[str], tile_width: int,
                      padding: int) -> Image.Image:
    """``grid`` (columns of ``tile_width`` px, ``padding`` px apart) with a ``LABEL_HEIGHT`` px
    strip above it naming each column: centred, words clearly apart, wrapped onto a second line
    when the column is narrow (then cut with "..")."""
    font = _font()
    labelled = Image.new("RGB", (grid.width, grid.height + LABEL_HEIGHT), "white")
    labelled.paste(grid, (0, LABEL_HEIGHT))
    draw = ImageDraw.Draw(labelled)
    gap = _word_gap(draw, font)
    for c, name in enumerate(names):
        lines = wrap_label(draw, str(name), font, tile_width)
        top = (LABEL_HEIGHT - len(lines) * LINE_HEIGHT) / 2
        for row, words in enumerate(lines):
            left = c * (tile_width + padding) + (
                tile_width - _line_width(draw, words, font, gap)) / 2
            for word in words:
                draw.text((left, top + row * LINE_HEIGHT), word, fill="black", font=font)
                left += draw.textlength(word, font=font) + gap
    return labelled
