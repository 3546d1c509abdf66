"""The model card's usage snippet runs as written, before upload (from the folder's parent)."""

import os
import re

from PIL import Image

from conftest import run_script


def test_card_usage_snippet_runs_as_written(tmp_path, photo_pairs, pix2pix_teacher):
    out = tmp_path / "my-student"
    run_script("distill", [
        "--teacher_model_name_or_path", str(pix2pix_teacher), "--train_data_dir", str(photo_pairs),
        "--direction", "BtoA", "--output_dir", str(out), "--student_ngf", "4",
        "--discriminator_ndf", "4", "--wkd_levels", "3", "--resolution", "32",
        "--train_batch_size", "2", "--max_train_steps", "1", "--validation_split", "2",
        "--num_validation_images", "2", "--validation_steps", "0", "--checkpointing_steps", "0",
        "--report_to", "none"])
    card = (out / "README.md").read_text()
    (snippet,) = re.findall(r"## Usage\s+```python\n(.*?)```", card, flags=re.S)
    assert 'from_pretrained("./my-student")' in snippet and "your-username" not in card
    assert "replace it with the repo id" in card  # once the folder is on the Hub
    Image.new("RGB", (45, 37), (120, 30, 200)).save(tmp_path / "input.jpg")
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        exec(compile(snippet, "card-snippet", "exec"), {})
    finally:
        os.chdir(cwd)
    assert Image.open(tmp_path / "translated.png").size == (45, 37)
