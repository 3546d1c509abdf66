"""The WKD authors' released CycleGAN distillation step, imported from a checkout of their code
(``ArchipLab-LinfengZhang/wkd-datasets``; nothing of it is copied here) so that
``distill_step.py --authors_code DIR`` times it side by side with ours.

What running it on a CPU takes, all at run time and said here:
- ``tkinter`` / ``turtle`` (unused imports of their ``networks.py``) and their ``test.py``
  (FID evaluation, unused by a step) are stubbed when importing;
- ``.cuda()`` (their DWT module) is a no-op while their model is built;
- ``ResnetGenerator(head=True)`` is their default, whose auxiliary head calls ``input()`` in
  its forward: the logged runs cannot have used it, so it is built with ``head=False`` (the
  pix2pix/CycleGAN generator).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import sys
import tempfile
import types
from pathlib import Path

import torch


@contextlib.contextmanager
def _importable(code_dir: Path):
    """Their checkout first on ``sys.path``, with the stubs above."""
    saved_path = list(sys.path)
    saved = {name: sys.modules.get(name) for name in ("test", "tkinter", "turtle")}
    sys.path.insert(0, str(code_dir))
    sys.modules["test"] = types.ModuleType("test")  # their FID script, not needed for a step
    for name, attribute in (("tkinter", "Y"), ("turtle", "forward")):
        try:
            __import__(name)
        except ImportError:
            stub = types.ModuleType(name)
            setattr(stub, attribute, None)
            sys.modules[name] = stub
    cuda = torch.nn.Module.cuda
    torch.nn.Module.cuda = lambda self, device=None: self
    try:
        yield
    finally:
        torch.nn.Module.cuda = cuda
        sys.path[:] = saved_path
        for name, module in saved.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module


def _options(ngf: int, ndf: int, checkpoints: str) -> argparse.Namespace:
    """Their train options of the logged runs (haar, 4 levels, 0.4; CycleGAN's defaults)."""
    return argparse.Namespace(
        model="cycle_gan", input_nc=3, output_nc=3, ngf=ngf, ndf=ndf, netG="resnet_9blocks",
        netD="basic", n_layers_D=3, norm="instance", no_dropout=True, init_type="normal",
        init_gain=0.02, gpu_ids=[], isTrain=True, checkpoints_dir=checkpoints, name="bench",
        preprocess="resize_and_crop", direction="AtoB", distill=True, kd_wavelet_distillation=0.4,
        kd_prediction_distillation=0.0, level=4, basis="haar", use_teacher_d=False,
        lambda_identity=0.5, lambda_A=10.0, lambda_B=10.0, pool_size=50, gan_mode="lsgan",
        lr=2e-4, beta1=0.5)


def authors_step(code_dir: str | Path, resolution: int, batch_size: int = 1,
                 student_ngf: int = 16, teacher_ngf: int = 64, ndf: int = 64):
    """A closure running one ``optimize_parameters()`` of their distillation model (two students,
    two teachers whose whole CycleGAN forward runs, two Ds, WKD with MSE) on a fixed batch."""
    code_dir = Path(code_dir)
    if not (code_dir / "models" / "cycle_gan_model.py").is_file():
        raise SystemExit(f"error: --authors_code {code_dir} is not a checkout of the authors' "
                         "code (no models/cycle_gan_model.py).")
    with _importable(code_dir), tempfile.TemporaryDirectory() as checkpoints:
        from models import create_model, networks  # theirs

        defaults = list(networks.ResnetGenerator.__init__.__defaults__)
        networks.ResnetGenerator.__init__.__defaults__ = (*defaults[:-1], False)  # head=False
        try:
            opt = _options(student_ngf, ndf, checkpoints)
            teacher_opt = copy.copy(opt)
            teacher_opt.ngf, teacher_opt.distill = teacher_ngf, False
            teacher = create_model(teacher_opt)
            teacher.isTrain = False
            model = create_model(opt, teacher)
        finally:
            networks.ResnetGenerator.__init__.__defaults__ = tuple(defaults)
    data = {d: torch.rand(batch_size, 3, resolution, resolution) * 2 - 1 for d in "AB"}
    data.update({"A_paths": ["a"] * batch_size, "B_paths": ["b"] * batch_size})

    def step() -> None:
        model.set_input(data)
        model.optimize_parameters()
        float(model.loss_G.detach()), float(model.loss_D_A.detach())
    return step
