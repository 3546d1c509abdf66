#!/usr/bin/env python
"""The whole product in one offline command (``make demo``).

1. Builds a small real paired dataset from photographs shipped inside installed packages:
   4x blur-and-downsample -> sharp, held out by photo (``examples/demo_data.py``).
2. Trains a small pix2pix teacher, then distils two students of the same size from it, one with
   wavelet knowledge distillation (high bands) and one without any KD, all with
   ``accelerate launch`` of the real training scripts.
3. Prints params, MACs, measured CPU latency and held-out quality for the three networks, and
   saves the student folders (with model cards) and a comparison grid.

    python examples/demo.py                   # ~10-15 minutes on 2 CPU cores
    python examples/demo.py --quick           # tiny nets and a few steps: a smoke test

Everything goes under ``--output_dir`` (default ``demo_output/``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from wkd_hf.data import PairedTransform, build_eval_dataloader, load_paired_dataset
from wkd_hf.metrics.efficiency import profile_model
from wkd_hf.metrics.paired import evaluate_paired
from wkd_hf.models import load_pretrained_model
from wkd_hf.recipes import first_batch, image_grid

ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("demo")


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and lengths of the demo; ``QUICK`` is the smoke-test version used by the tests."""

    resolution: int = 64
    crops_per_photo: int = 48
    teacher_ngf: int = 32
    num_downs: int = 6  # U-Net depth: 64 px -> 1 px at the bottleneck
    student_ngf: int = 8
    discriminator_ndf: int = 16
    batch_size: int = 4
    teacher_steps: int = 2000
    student_steps: int = 1200
    lambda_wkd: float = 10.0
    latency_resolution: int = 256
    latency_repeats: int = 10


QUICK = DemoSettings(resolution=32, crops_per_photo=4, teacher_ngf=8, num_downs=5,
                     student_ngf=4, discriminator_ndf=8, batch_size=2, teacher_steps=4,
                     student_steps=3, latency_resolution=64, latency_repeats=2)


def launch(script: str, flags: dict[str, object], switches: tuple[str, ...] = ()) -> None:
    """``accelerate launch training_scripts/<script>`` with ``--key value`` flags."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--num_cpu_threads_per_process", str(torch.get_num_threads()),
               str(ROOT / "training_scripts" / script)]
    for key, value in flags.items():
        command += [f"--{key}", str(value)]
    command += [f"--{switch}" for switch in (*switches, "overwrite_output_dir")]  # demo reruns
    shown = command[command.index(str(ROOT / "training_scripts" / script)) + 1:]
    logger.info("$ accelerate launch training_scripts/%s %s", script, " ".join(shown))
    subprocess.run(command, check=True)


def common_flags(data_dir: Path, settings: DemoSettings, steps: int, output_dir: Path) -> dict:
    return {"train_data_dir": data_dir, "resolution": settings.resolution,
            "train_batch_size": settings.batch_size, "max_train_steps": steps,
            "validation_split": 16 if settings is not QUICK else 2,
            "validation_steps": max(steps // 4, 1), "checkpointing_steps": steps,
            "checkpoints_total_limit": 1, "lr_scheduler": "pix2pix_linear", "report_to": "tensorboard",
            "seed": 0, "output_dir": output_dir}


def train_all(data_dir: Path, out: Path, settings: DemoSettings) -> dict[str, Path]:
    """Teacher, WKD student and no-KD student; returns name -> output folder."""
    folders = {"teacher": out / "teacher", "WKD student": out / "student_wkd",
               "no-KD student": out / "student_nokd"}
    launch("train_teacher.py", {
        **common_flags(data_dir, settings, settings.teacher_steps, folders["teacher"]),
        "mode": "paired", "generator": "unet", "ngf": settings.teacher_ngf,
        "num_downs": settings.num_downs, "norm_type": "batch", "ndf": 32})
    for name, bands in (("WKD student", "high"), ("no-KD student", "none")):
        launch("distill.py", {
            **common_flags(data_dir, settings, settings.student_steps, folders[name]),
            "teacher_model_name_or_path": folders["teacher"], "student_ngf": settings.student_ngf,
            "discriminator_ndf": settings.discriminator_ndf, "wkd_bands": bands,
            "wkd_levels": 3, "lambda_wkd": settings.lambda_wkd})
    return folders


def evaluate_all(folders: dict[str, Path], data_dir: Path, out: Path, settings: DemoSettings
                 ) -> list[dict]:
    """Efficiency and held-out quality of each network; writes the comparison grid."""
    test = load_paired_dataset(train_data_dir=str(data_dir), split="test")
    loader = build_eval_dataloader(test, PairedTransform(settings.resolution, train=False), 8)
    batch = first_batch(loader)
    columns = {"input": batch["source"]}
    rows = [{"network": "input (bicubic)", "params": 0, "macs": 0, "latency_ms": None,
             **evaluate_paired(torch.nn.Identity(), loader)}]
    for name, folder in folders.items():
        model = load_pretrained_model(str(folder))
        profile = profile_model(model, resolution=settings.latency_resolution,
                                repeats=settings.latency_repeats)
        quality = evaluate_paired(model, loader)
        rows.append({"network": name, "params": profile.params, "macs": profile.macs,
                     "latency_ms": profile.latency.median_ms, **quality})
        with torch.no_grad():
            columns[name] = model(batch["source"])
    columns["target"] = batch["target"]
    image_grid(columns).save(out / "comparison.png")
    return rows


def format_table(rows: list[dict], settings: DemoSettings) -> str:
    teacher = next(row for row in rows if row["network"] == "teacher")
    lines = [f"{'network':<16}{'params':>10}{'MACs@' + str(settings.latency_resolution):>11}"
             f"{'latency ms':>12}{'speed-up':>10}{'PSNR dB':>9}{'L1':>8}{'LL':>7}{'HH':>7}"]
    for row in rows:
        if row["latency_ms"] is None:
            cost = f"{'-':>10}{'-':>11}{'-':>12}{'-':>10}"
        else:
            cost = (f"{row['params'] / 1e6:>9.3f}M{row['macs'] / 1e9:>10.3f}G"
                    f"{row['latency_ms']:>12.1f}{teacher['latency_ms'] / row['latency_ms']:>9.2f}x")
        lines.append(f"{row['network']:<16}{cost}{row['psnr']:>9.2f}{row['l1']:>8.4f}"
                     f"{row['band_LL']:>7.3f}{row['band_HH']:>7.3f}")
    return "\n".join(lines)


def build_data(out: Path, settings: DemoSettings) -> Path:
    spec = importlib.util.spec_from_file_location("demo_data", ROOT / "examples" / "demo_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data_dir = out / "data"
    module.build_demo_dataset(data_dir, resolution=settings.resolution,
                              crops_per_photo=settings.crops_per_photo)
    return data_dir


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output_dir", default="demo_output")
    parser.add_argument("--quick", action="store_true", help="Tiny nets, a few steps.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = QUICK if args.quick else DemoSettings()
    out = Path(args.output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data_dir = build_data(out, settings)
    folders = train_all(data_dir, out, settings)
    rows = evaluate_all(folders, data_dir, out, settings)
    table = format_table(rows, settings)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    (out / "results.txt").write_text(table + "\n")
    print(f"\nHeld-out test photos ({settings.resolution} px; PSNR/L1 against the sharp targets; "
          "LL/HH = the paper's per-band normalised L1, lower is better).\nLatency: median of "
          f"{settings.latency_repeats} CPU runs at {settings.latency_resolution} px, batch 1, "
          f"{torch.get_num_threads()} threads.\n\n{table}\n")
    print(f"Finished in {(time.perf_counter() - start) / 60:.1f} min. Everything is in {out}:")
    for name, folder in folders.items():
        print(f"  {name:<14} {folder}  (README.md = model card, samples.png)")
    print(f"  comparison grid {out / 'comparison.png'} (input | teacher | WKD | no-KD | target)")
    print(f"  table           {out / 'results.txt'}, {out / 'results.json'}")
    return rows


if __name__ == "__main__":
    main()
