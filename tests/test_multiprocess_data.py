"""Two real processes (gloo): each rank sees different samples and together they cover the data,
for map-style and streaming loaders prepared by accelerate (no double sharding)."""

import json
import os
import subprocess
import sys

import pytest
from conftest import free_port
from PIL import Image

RANK_SCRIPT = """
import json, sys, torch
from accelerate import Accelerator
from wkd_hf.data import PairedTransform, build_train_dataloader, load_paired_dataset
folder, streaming, out = sys.argv[1], sys.argv[2] == "1", sys.argv[3]
accelerator = Accelerator(cpu=True)
dataset = load_paired_dataset(train_data_dir=folder, streaming=streaming)
loader = build_train_dataloader(dataset, PairedTransform(8, flip=False), 1, seed=0)
loader = accelerator.prepare(loader)
seen = [round(float(batch["target"].mean()), 3) for batch in loader]
with open(f"{out}.{accelerator.process_index}.json", "w") as handle:
    json.dump(seen, handle)
accelerator.wait_for_everyone()
accelerator.end_training()  # destroys the process group, as the training scripts do: a gloo group
                            # left to interpreter shutdown can abort ("terminate called ...")
"""


@pytest.mark.parametrize("streaming", ["0", "1"], ids=["map-style", "streaming"])
def test_two_ranks_see_disjoint_data_covering_the_set(tmp_path, streaming):
    folder = tmp_path / "ab"
    folder.mkdir()
    for i in range(8):  # side-by-side images whose right half (the target) encodes the index
        image = Image.new("RGB", (16, 8), (0, 0, 0))
        image.paste((i * 30, i * 30, i * 30), (8, 0, 16, 8))
        image.save(folder / f"{i}.png")
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    command = [sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu",
               "--main_process_port", free_port(),
               "--num_processes", "2", "--num_machines", "1", "--mixed_precision", "no",
               "--dynamo_backend", "no", str(script), str(folder), streaming,
               str(tmp_path / "seen")]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"seen.{r}.json").read_text()) for r in (0, 1)]
    assert len(ranks[0]) == len(ranks[1]) == 4
    assert not set(ranks[0]) & set(ranks[1]), ranks
    expected = {round(i * 30 / 255 * 2 - 1, 3) for i in range(8)}
    assert set(ranks[0]) | set(ranks[1]) == expected
