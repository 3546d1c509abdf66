"""Two machines without a shared disk, simulated by two gloo processes that are each the main
process of their own "node" (LOCAL_RANK 0) and each write into their own output folder."""

import json
import os
import socket
import subprocess
import sys

import pytest

RANK_SCRIPT = """
import json, sys, torch
from accelerate import Accelerator
from accelerate.utils import ProjectConfiguration
from wkd_hf.checkpointing import LoopState, agreed_resume_checkpoint, save_checkpoint
from wkd_hf.errors import WKDError
root, each_node = sys.argv[1], sys.argv[2] == "1"
config = ProjectConfiguration(save_on_each_node=each_node)
accelerator = Accelerator(cpu=True, project_config=config)
out = f"{root}/node{accelerator.process_index}"  # each machine's own disk
torch.manual_seed(0)
model = accelerator.prepare(torch.nn.Linear(2, 2))
state = LoopState(global_step=3)
accelerator.register_for_checkpointing(state)
save_checkpoint(accelerator, out, 3)
with torch.no_grad():
    model.module.weight.zero_() if hasattr(model, "module") else model.weight.zero_()
state.global_step = 0
try:
    path = agreed_resume_checkpoint(accelerator, out, "latest")
    accelerator.load_state(str(path))
    result = {"resumed": str(path), "step": state.global_step,
              "weights": float(sum(p.abs().sum() for p in model.parameters()))}
except WKDError as error:
    result = {"error": str(error)}
with open(f"{root}/result{accelerator.process_index}.json", "w") as handle:
    json.dump(result, handle)
accelerator.wait_for_everyone()
accelerator.end_training()
"""


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _two_nodes(tmp_path, each_node: bool) -> list[dict]:
    script = tmp_path / "rank.py"
    script.write_text(RANK_SCRIPT)
    port = str(_free_port())
    processes = []
    for rank in (0, 1):
        env = {**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
               "MASTER_PORT": port, "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": "0",
               "LOCAL_WORLD_SIZE": "1", "NODE_RANK": str(rank)}
        processes.append(subprocess.Popen(
            [sys.executable, str(script), str(tmp_path), "1" if each_node else "0"], env=env,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
    return [json.loads((tmp_path / f"result{r}.json").read_text()) for r in (0, 1)]


@pytest.mark.parametrize("each_node", [True, False], ids=["save_on_each_node", "main-only"])
def test_every_node_resumes_the_main_process_checkpoint_or_says_why_not(tmp_path, each_node):
    results = _two_nodes(tmp_path, each_node)
    assert results[0]["resumed"] == str(tmp_path / "node0" / "checkpoint-3")
    assert results[0]["step"] == 3 and results[0]["weights"] > 0
    if each_node:  # each machine wrote, renamed and now loads its own copy
        assert results[1]["resumed"] == str(tmp_path / "node1" / "checkpoint-3")
        assert results[1]["step"] == 3 and results[1]["weights"] == results[0]["weights"]
    else:  # before: node 1 found no checkpoint, kept its fresh weights and went on silently
        assert "process 1 has no" in results[1]["error"]
        assert "--save_on_each_node" in results[1]["error"]


NAN_SCRIPT = """
import json, sys, torch
from accelerate import Accelerator
from wkd_hf.training import _check_finite
accelerator = Accelerator(cpu=True)
rank = accelerator.process_index
loss = torch.tensor(float("nan") if rank == 1 else 1.0)
found = [_check_finite(accelerator, loss, {"wkd": loss}, "g_loss"),
         _check_finite(accelerator, torch.tensor(2.0), {}, "d_loss")]
with open(f"{sys.argv[1]}/nan{rank}.json", "w") as handle:
    json.dump(found, handle)
accelerator.wait_for_everyone()
accelerator.end_training()
"""


def test_a_non_finite_loss_on_one_rank_stops_or_skips_on_every_rank(tmp_path):
    script = tmp_path / "nan.py"
    script.write_text(NAN_SCRIPT)
    port = str(_free_port())
    processes = [subprocess.Popen(
        [sys.executable, str(script), str(tmp_path)], stdout=subprocess.PIPE,
        stderr=subprocess.PIPE, text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1",
             "MASTER_PORT": port, "WORLD_SIZE": "2", "RANK": str(rank), "LOCAL_RANK": str(rank),
             "LOCAL_WORLD_SIZE": "2"}) for rank in (0, 1)]
    for process in processes:
        _, err = process.communicate(timeout=300)
        assert process.returncode == 0, err[-3000:]
    found = [json.loads((tmp_path / f"nan{r}.json").read_text()) for r in (0, 1)]
    assert found == [["g_loss (on another process)", None], ["wkd", None]]
