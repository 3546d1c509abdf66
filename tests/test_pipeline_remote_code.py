"""``DiffusionPipeline.from_pretrained(folder, trust_remote_code=True)`` in a fresh Python process
that imports nothing of ours: diffusers must find the pipeline and the generator classes through the
files ``save_pretrained`` writes into the folder, not through modules the caller happened to import."""

import json
import os
import subprocess
import sys
import textwrap

import torch

from conftest import ROOT
from wkd_hf import ImageTranslationPipeline
from wkd_hf.models import ResnetGenerator, UnetGenerator

FRESH = textwrap.dedent("""
    import sys, torch
    from diffusers import DiffusionPipeline
    pipe = DiffusionPipeline.from_pretrained(sys.argv[1], trust_remote_code=True)
    assert not any(name == "wkd_hf" for name in sys.argv), "nothing of ours on the command line"
    x = torch.load(sys.argv[2], weights_only=True)
    torch.save({"class": type(pipe).__name__, "generator": type(pipe.generator).__name__,
                "resolution": pipe.resolution, "out": pipe(x, output_type="pt").images},
               sys.argv[3])
""")


def _fresh_load(folder, image, tmp_path):
    """Load ``folder`` with diffusers' generic loader in a new interpreter; returns its report."""
    torch.save(image, tmp_path / "in.pt")
    env = {**os.environ, "HF_MODULES_CACHE": str(tmp_path / "modules"), "HF_HUB_OFFLINE": "1"}
    result = subprocess.run([sys.executable, "-c", FRESH, str(folder), str(tmp_path / "in.pt"),
                             str(tmp_path / "out.pt")], env=env, cwd=tmp_path,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    return torch.load(tmp_path / "out.pt", weights_only=True)


def test_generic_diffusers_loader_works_in_a_fresh_process(tmp_path):
    for name, model in (("resnet", ResnetGenerator(3, 3, ngf=4, n_blocks=1)),
                        ("unet", UnetGenerator(3, 3, num_downs=5, ngf=4))):
        torch.manual_seed(0)
        pipe = ImageTranslationPipeline(model.eval(), resolution=32, direction="AtoB")
        pipe.set_progress_bar_config(disable=True)
        pipe.save_pretrained(tmp_path / name)
        image = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(1))
        report = _fresh_load(tmp_path / name, image, tmp_path)
        index = json.loads((tmp_path / name / "model_index.json").read_text())
        assert (tmp_path / name / "generator" / f"{index['generator'][0]}.py").is_file()
        assert report["class"] == "ImageTranslationPipeline"
        assert report["generator"] == type(model).__name__ and report["resolution"] == 32
        assert torch.allclose(report["out"], pipe(image, output_type="pt").images, atol=1e-6)
        # Our own loader reads the same folder.
        again = ImageTranslationPipeline.from_pretrained(tmp_path / name)
        assert type(again.generator) is type(model)
