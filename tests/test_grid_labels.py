"""Picture grids name their columns: a strip above the tiles with each column's label."""

import numpy as np
import torch

from wkd_hf.grid_labels import LABEL_HEIGHT
from wkd_hf.recipes import image_grid, save_previews


def _columns():
    gen = torch.Generator().manual_seed(0)
    return {name: torch.rand(2, 3, 48, 48, generator=gen) * 2 - 1
            for name in ("input", "teacher", "student", "target")}


def _inked_columns(image, columns: int, width: int = 48, padding: int = 2) -> list[bool]:
    strip = np.asarray(image.convert("L"))[:LABEL_HEIGHT]
    return [bool((strip[:, c * (width + padding):c * (width + padding) + width] < 128).any())
            for c in range(columns)]


def test_labelled_grid_adds_a_strip_with_text_over_every_column():
    plain, labelled = image_grid(_columns()), image_grid(_columns(), labels=True)
    assert labelled.size == (plain.width, plain.height + LABEL_HEIGHT)
    assert np.array_equal(np.asarray(labelled)[LABEL_HEIGHT:], np.asarray(plain))
    assert _inked_columns(labelled, 4) == [True] * 4
    # Different names, different strips: the text is the column's name.
    renamed = dict(zip(("a", "b", "c", "d"), _columns().values()))
    assert not np.array_equal(np.asarray(image_grid(renamed, labels=True))[:LABEL_HEIGHT],
                              np.asarray(labelled)[:LABEL_HEIGHT])


def test_saved_samples_and_validation_grids_are_labelled(tmp_path):
    paths = save_previews({"samples": _columns()}, tmp_path, "samples")
    from PIL import Image

    with Image.open(paths["samples"]) as saved:
        assert saved.height == 2 * 48 + 2 + LABEL_HEIGHT
        assert _inked_columns(saved, 4) == [True] * 4


def test_cycle_runs_write_one_grid_per_direction_as_the_readme_says(tmp_path):
    from conftest import ROOT

    columns = _columns()
    paths = save_previews({"a2b": columns, "b2a": columns}, tmp_path, "samples")
    assert sorted(p.name for p in paths.values()) == ["samples_a2b.png", "samples_b2a.png"]
    section = (ROOT / "README.md").read_text().split("### What a run writes")[1].split("###")[0]
    assert all(f"`{p.name}`" in section for p in paths.values())
    assert "`validation/step-N_a2b.png`" in section and "labelled columns" in section


def _ink_runs(strip: np.ndarray) -> list[int]:
    """Widths of the blank gaps between inked pixel columns of ``strip`` (H x W grey)."""
    inked = (strip < 160).any(axis=0)
    cols = np.flatnonzero(inked)
    return [int(b - a - 1) for a, b in zip(cols[:-1], cols[1:]) if b - a > 1]


def test_words_of_a_label_are_clearly_apart():
    """Pillow's own space is 2-3 px at this size, barely wider than the 1-2 px between letters:
    'WKD student' read as 'WKDstudent'. A space must be at least twice a letter gap."""
    for name in ("WKD student", "no-KD student", "noisy input", "teacher"):
        grid = image_grid({name: torch.zeros(1, 3, 128, 128)}, labels=True)
        gaps = _ink_runs(np.asarray(grid.convert("L"))[:LABEL_HEIGHT])
        assert sum(gap >= 4 for gap in gaps) == name.count(" "), (name, gaps)


def test_a_long_label_wraps_onto_a_second_line_within_its_column():
    from PIL import Image, ImageDraw

    from wkd_hf.grid_labels import _font, _line_width, _word_gap, wrap_label

    draw, font = ImageDraw.Draw(Image.new("RGB", (1, 1))), _font()
    assert wrap_label(draw, "no-KD student", font, 48) == [["no-KD"], ["student"]]
    assert wrap_label(draw, "no-KD student", font, 128) == [["no-KD", "student"]]
    lines = wrap_label(draw, "a very long column name that cannot fit", font, 48)
    assert len(lines) == 2 and lines[-1][-1].endswith("..")
    assert all(_line_width(draw, line, font, _word_gap(draw, font)) <= 48 for line in lines)
    # Drawn: ink on both lines, none outside the column.
    grid = image_grid({"no-KD student": torch.zeros(1, 3, 48, 48),
                       "x": torch.zeros(1, 3, 48, 48)}, labels=True)
    strip = np.asarray(grid.convert("L"))[:LABEL_HEIGHT] < 160
    half = LABEL_HEIGHT // 2
    assert strip[:half, :48].any() and strip[half:, :48].any()
    assert not strip[:, 48:50].any()
