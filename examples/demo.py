#!/usr/bin/env python
"""The whole product in one offline command (``make demo``).

1. Builds a small real paired denoising dataset from photographs shipped inside installed
   packages: noisy (Gaussian, sigma 0.15) -> clean, held out by photo (``examples/demo_data.py``);
   64 px training crops (RGB channels in random order: colour augmentation), 128 px test crops.
2. Distils two students of the same size from the committed pix2pix U-Net teacher
   (``examples/demo_teacher/``, trained once by ``make demo-teacher``), one with wavelet knowledge
   distillation (high bands) and one without any KD, with ``accelerate launch`` of the real
   training scripts, side by side (1 CPU thread each, always). The teacher weights the GAN term
   0.1 (pix2pix: 1) beside L1 x 100 (the demo's earlier teacher, ngf 32 with pix2pix's weight,
   left grain and turned the test flower's teal background navy); the students use pix2pix's 1.
3. Prints params, MACs, measured CPU latency and held-out quality for the noisy input (doing
   nothing) and the three networks, and saves the student folders (with model cards) and a
   comparison grid.

    python examples/demo.py                   # see the README for the time it took
    python examples/demo.py --train_teacher   # (re)train examples/demo_teacher/ (resumable)
    python examples/demo.py --quick           # tiny nets and a few steps, its own teacher

Everything goes under ``--output_dir`` (default ``demo_output/``).
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import shutil
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from wkd_hf.data import PairedTransform, build_eval_dataloader, load_paired_dataset
from wkd_hf.metrics.efficiency import profile_models, spread_warning
from wkd_hf.metrics.paired import evaluate_paired
from wkd_hf.models import load_pretrained_model
from wkd_hf.recipes import image_grid

ROOT = Path(__file__).resolve().parents[1]
TEACHER_DIR = ROOT / "examples" / "demo_teacher"  # committed: written by --train_teacher
TEACHER_FILES = ("config.json", "diffusion_pytorch_model.safetensors", "README.md", "args.json",
                 "samples.png", "demo_settings.json")
logger = logging.getLogger("demo")


@dataclass(frozen=True)
class DemoSettings:
    """Sizes and lengths of the demo; ``QUICK`` is the smoke-test version used by the tests."""

    resolution: int = 64  # training crops
    crops_per_photo: int = 96
    test_resolution: int = 128  # held-out crops: evaluated and shown larger
    test_crops_per_photo: int = 16
    noise_sigma: float = 0.15
    teacher_ngf: int = 16
    num_downs: int = 6  # U-Net depth: inputs must be multiples of 2**6 = 64 px
    student_ngf: int = 8
    discriminator_ndf: int = 16
    batch_size: int = 4
    teacher_steps: int = 3000  # make demo-teacher only
    student_steps: int = 1200
    lambda_wkd: float = 10.0
    teacher_lambda_gan: float = 0.1  # GAN weight beside L1 x 100 (pix2pix: 1): less grain
    student_lambda_gan: float = 1.0  # pix2pix's: at 0.1 the 4x smaller students came out grey
    grid_rows_per_photo: int = 3
    latency_resolution: int = 256
    latency_repeats: int = 20


QUICK = DemoSettings(resolution=32, crops_per_photo=4, test_resolution=64, test_crops_per_photo=2,
                     teacher_ngf=8, num_downs=5, student_ngf=4, discriminator_ndf=8, batch_size=2,
                     teacher_steps=4, student_steps=3, grid_rows_per_photo=1,
                     latency_resolution=64, latency_repeats=2)


# Fixed: the figures depend on the number of threads (the order of float sums). One thread per
# process, the two students side by side: both cores of a 2-core machine busy, and no thread of an
# op waiting for another that a loaded machine has descheduled (2 threads ran ~30x slower there).
THREADS = 1
LOOK_AT = ("Look at {grid}: one held-out crop per row; columns noisy input | teacher | "
           "WKD student | no-KD student | clean target. Compare the noise left in flat areas "
           "(sky, fur, petals) and the sharpness of edges and fine texture.")


def _command(script: str, flags: dict[str, object], overwrite: bool) -> list[str]:
    """``accelerate launch training_scripts/<script>`` with ``--key value`` flags, 1 thread."""
    command = [sys.executable, "-m", "accelerate.commands.launch", "--num_processes", "1",
               "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
               "--num_cpu_threads_per_process", str(THREADS),
               str(ROOT / "training_scripts" / script)]
    for key, value in flags.items():
        command += [f"--{key}", str(value)]
    command += ["--overwrite_output_dir"] if overwrite else []  # demo reruns
    shown = command[command.index(str(ROOT / "training_scripts" / script)) + 1:]
    logger.info("$ accelerate launch training_scripts/%s %s", script, " ".join(shown))
    return command


def launch(script: str, flags: dict[str, object], overwrite: bool = True) -> None:
    """Run one training script to its end (its progress on this terminal)."""
    start = time.perf_counter()
    subprocess.run(_command(script, flags, overwrite), check=True)
    logger.info("%s done in %.1f min", script, (time.perf_counter() - start) / 60)


def launch_together(jobs: dict[Path, tuple[str, dict[str, object]]]) -> None:
    """Run the training scripts of ``jobs`` (log file -> (script, flags)) at the same time, one
    thread each, each writing its output to its log; fails, naming the log, if any fails."""
    start, running = time.perf_counter(), {}
    for log, (script, flags) in jobs.items():
        log.parent.mkdir(parents=True, exist_ok=True)
        with open(log, "w") as stream:  # the child keeps its own handle
            running[log] = subprocess.Popen(_command(script, flags, True), stdout=stream,
                                            stderr=subprocess.STDOUT)
    logger.info("Training %d students side by side (1 thread each); progress in %s",
                len(jobs), ", ".join(str(log) for log in jobs))
    failed = [log for log, process in running.items() if process.wait() != 0]
    if failed:
        raise SystemExit(f"error: training failed, see the end of {', '.join(map(str, failed))}")
    logger.info("Students done in %.1f min", (time.perf_counter() - start) / 60)


def common_flags(data_dir: Path, settings: DemoSettings, steps: int, output_dir: Path) -> dict:
    return {"train_data_dir": data_dir, "resolution": settings.resolution,
            "train_batch_size": settings.batch_size, "max_train_steps": steps,
            "validation_split": 16 if settings is not QUICK else 2,
            "validation_steps": max(steps // 4, 1), "checkpointing_steps": steps,
            "checkpoints_total_limit": 1, "lr_scheduler": "pix2pix_linear", "report_to": "tensorboard",
            "seed": 0, "output_dir": output_dir}


def train_teacher(data_dir: Path, output_dir: Path, settings: DemoSettings,
                  resumable: bool = False) -> None:
    """The pix2pix U-Net teacher. ``resumable`` (``make demo-teacher``): checkpoints every 250
    steps, one thread, and a rerun resumes from ``output_dir``'s newest checkpoint."""
    flags = {**common_flags(data_dir, settings, settings.teacher_steps, output_dir),
             "mode": "paired", "generator": "unet", "ngf": settings.teacher_ngf,
             "num_downs": settings.num_downs, "norm_type": "batch", "ndf": 32,
             "lambda_gan": settings.teacher_lambda_gan}
    if not resumable:
        launch("train_teacher.py", flags)
        return
    resume = any(output_dir.glob("checkpoint-*"))
    flags["checkpointing_steps"] = 500
    launch("train_teacher.py", {**flags, **({"resume_from_checkpoint": "latest"} if resume else {})},
           overwrite=not resume)


def _repo_relative(path: str) -> str:
    """``path`` relative to the repository when inside it, else its last part."""
    resolved = Path(path).resolve()
    return str(resolved.relative_to(ROOT)) if resolved.is_relative_to(ROOT) else resolved.name


def publish_teacher(run_dir: Path, settings: DemoSettings, target: Path | None = None) -> None:
    """Copy the trained teacher's files (weights, config, card, args, samples) to ``target``
    (default ``TEACHER_DIR``), written beside it and renamed into place."""
    target = target or TEACHER_DIR
    (run_dir / "demo_settings.json").write_text(json.dumps(asdict(settings), indent=2) + "\n")
    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    for name in TEACHER_FILES:
        shutil.copy2(run_dir / name, staging / name)
    args = json.loads((staging / "args.json").read_text())
    for key in ("output_dir", "train_data_dir"):  # no local absolute paths in a committed file
        args[key] = _repo_relative(args[key])
    (staging / "args.json").write_text(json.dumps(args, indent=2, sort_keys=True))
    with open(staging / "README.md", "a", encoding="utf-8") as card:
        card.write(TEACHER_NOTE.format(steps=settings.teacher_steps, sigma=settings.noise_sigma,
                                       crops=settings.crops_per_photo,
                                       resolution=settings.resolution,
                                       lambda_gan=settings.teacher_lambda_gan))
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    logger.info("Demo teacher written to %s", target)


TEACHER_NOTE = """

## The wkd_hf demo's teacher

Trained once by `make demo-teacher` (`python examples/demo.py --train_teacher`) for {steps} steps
on the demo's denoising set (`examples/demo_data.py`: {crops} crops of {resolution} px per train
photo, Gaussian noise sigma {sigma:g}, each train crop's RGB channels in a random order as colour
augmentation; the test photos are held out), with the GAN term weighted {lambda_gan:g} (pix2pix:
1) beside L1 x 100 (the demo's earlier teacher, ngf 32 with pix2pix's weight, left grain and
turned the test flower's teal background navy).
`make demo` distils its students from this folder.
"""

TEACHER_KEYS = ("resolution", "crops_per_photo", "noise_sigma", "teacher_ngf", "num_downs",
                "teacher_steps", "batch_size", "teacher_lambda_gan")  # what shapes the committed teacher


def committed_teacher(settings: DemoSettings, folder: Path | None = None) -> Path | None:
    """``folder`` (default ``TEACHER_DIR``) if it holds a teacher trained with these settings,
    else None (with the reason logged)."""
    folder = folder or TEACHER_DIR
    saved = folder / "demo_settings.json"
    if not all((folder / name).is_file() for name in TEACHER_FILES):
        logger.warning("No committed demo teacher in %s (`make demo-teacher` writes it).", folder)
        return None
    trained = json.loads(saved.read_text())
    changed = [key for key in TEACHER_KEYS if trained.get(key) != getattr(settings, key)]
    if changed:
        logger.warning("The demo teacher in %s was trained with other %s; `make demo-teacher` "
                       "retrains it.", folder, ", ".join(changed))
        return None
    return folder


def train_all(data_dir: Path, out: Path, settings: DemoSettings) -> dict[str, Path]:
    """WKD and no-KD students of the committed teacher; without one (and in ``QUICK``), the
    teacher is trained first, into ``out/teacher``. Returns name -> folder."""
    teacher = None if settings is QUICK else committed_teacher(settings)
    if teacher is None:
        teacher = out / "teacher"
        logger.info("Training the teacher first (%d steps).", settings.teacher_steps)
        train_teacher(data_dir, teacher, settings)
    folders = {"teacher": teacher, "WKD student": out / "student_wkd",
               "no-KD student": out / "student_nokd"}
    jobs = {}
    for name, bands in (("WKD student", "high"), ("no-KD student", "none")):
        jobs[out / f"{folders[name].name}.log"] = ("distill.py", {
            **common_flags(data_dir, settings, settings.student_steps, folders[name]),
            "teacher_model_name_or_path": folders["teacher"], "student_ngf": settings.student_ngf,
            "discriminator_ndf": settings.discriminator_ndf, "wkd_bands": bands,
            "wkd_levels": 3, "lambda_wkd": settings.lambda_wkd,
            "lambda_gan": settings.student_lambda_gan})
    launch_together(jobs)
    return folders


def grid_batch(test, photos: list[str], settings: DemoSettings) -> dict[str, torch.Tensor]:
    """The first ``grid_rows_per_photo`` test crops of each test photo, as one batch."""
    rows = [i for name in dict.fromkeys(photos)
            for i in [j for j, p in enumerate(photos) if p == name][:settings.grid_rows_per_photo]]
    transform = PairedTransform(settings.test_resolution, train=False)
    samples = [transform(test[i]) for i in rows]
    return {key: torch.stack([sample[key] for sample in samples]) for key in ("source", "target")}


def evaluate_all(folders: dict[str, Path], data_dir: Path, photos: list[str], out: Path,
                 settings: DemoSettings) -> list[dict]:
    """Efficiency and held-out quality of each network; writes the comparison grid."""
    test = load_paired_dataset(train_data_dir=str(data_dir), split="test")
    loader = build_eval_dataloader(test, PairedTransform(settings.test_resolution, train=False), 8)
    batch = grid_batch(test, photos, settings)
    columns = {"noisy input": batch["source"]}
    rows = [{"network": "noisy input", "params": 0, "macs": 0, "latency_ms": None,
             **evaluate_paired(torch.nn.Identity(), loader)}]
    models = {name: load_pretrained_model(str(folder)).eval() for name, folder in folders.items()}
    # All three timed in the same rounds, in a rotated order, as wkd-profile does.
    profiles = profile_models(models, resolution=settings.latency_resolution,
                              repeats=settings.latency_repeats)
    warning = spread_warning(profiles)
    if warning:
        print(warning)
    for (name, model), profile in zip(models.items(), profiles):
        rows.append({"network": name, "params": profile.params, "macs": profile.macs,
                     "latency_ms": profile.latency.median_ms,
                     "latency_spread": profile.latency.spread, **evaluate_paired(model, loader)})
        with torch.no_grad():
            columns[name] = model(batch["source"])
    columns["clean target"] = batch["target"]
    image_grid(columns, labels=True).save(out / "comparison.png")
    return rows


def format_table(rows: list[dict], settings: DemoSettings) -> str:
    teacher = next(row for row in rows if row["network"] == "teacher")
    lines = [f"{'network':<16}{'params':>10}{'MACs@' + str(settings.latency_resolution):>11}"
             f"{'latency ms':>12}{'speed-up':>10}{'PSNR dB':>9}{'SSIM':>8}{'LL':>7}{'HH':>7}"]
    for row in rows:
        if row["latency_ms"] is None:
            cost = f"{'-':>10}{'-':>11}{'-':>12}{'-':>10}"
        else:
            cost = (f"{row['params'] / 1e6:>9.3f}M{row['macs'] / 1e9:>10.3f}G"
                    f"{row['latency_ms']:>12.1f}{teacher['latency_ms'] / row['latency_ms']:>9.2f}x")
        lines.append(f"{row['network']:<16}{cost}{row['psnr']:>9.2f}{row['ssim']:>8.4f}"
                     f"{row['band_LL']:>7.3f}{row['band_HH']:>7.3f}")
    return "\n".join(lines)


def build_data(out: Path, settings: DemoSettings) -> tuple[Path, list[str]]:
    """The demo dataset under ``out/data``; returns its folder and the test rows' photo names."""
    spec = importlib.util.spec_from_file_location("demo_data", ROOT / "examples" / "demo_data.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    data_dir = out / "data"
    data = module.build_demo_dataset(
        data_dir, resolution=settings.resolution, crops_per_photo=settings.crops_per_photo,
        test_resolution=settings.test_resolution,
        test_crops_per_photo=settings.test_crops_per_photo, noise_sigma=settings.noise_sigma)
    return data_dir, list(data["test"]["photo"])


def run(out: Path, settings: DemoSettings) -> list[dict]:
    """Data, training, evaluation; prints the table and where everything is."""
    torch.set_num_threads(THREADS)
    out.mkdir(parents=True, exist_ok=True)
    start = time.perf_counter()
    data_dir, photos = build_data(out, settings)
    folders = train_all(data_dir, out, settings)
    rows = evaluate_all(folders, data_dir, photos, out, settings)
    table = format_table(rows, settings)
    (out / "results.json").write_text(json.dumps(rows, indent=2))
    (out / "results.txt").write_text(table + "\n")
    print(f"\nDenoising (Gaussian noise, sigma {settings.noise_sigma:g}), trained on "
          f"{settings.resolution} px crops, tested on {settings.test_resolution} px crops of "
          "held-out photos.\nPSNR/SSIM against the clean targets (higher is better); LL/HH = "
          "the paper's per-band normalised L1 (lower is better); 'noisy input' = doing nothing."
          f"\nLatency: median of {settings.latency_repeats} interleaved CPU rounds at "
          f"{settings.latency_resolution} px, batch 1, threads: {THREADS}.\n\n{table}\n")
    print(LOOK_AT.format(grid=out / "comparison.png"))
    print(f"\nFinished in {(time.perf_counter() - start) / 60:.1f} min. Everything is in {out}:")
    for name, folder in folders.items():
        print(f"  {name:<14} {folder}  (README.md = model card, samples.png)")
    print(f"  table           {out / 'results.txt'}, {out / 'results.json'}")
    print(f"\nSee the WKD student beside its teacher in your browser (upload your own photo):\n"
          f"  wkd-space --model {folders['WKD student']} --teacher {folders['teacher']} "
          "--size_mode pad --launch")
    return rows


def main(argv: list[str] | None = None) -> list[dict]:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--output_dir", default="demo_output")
    parser.add_argument("--quick", action="store_true", help="Tiny nets, a few steps.")
    parser.add_argument("--train_teacher", action="store_true",
                        help=f"Train the demo's teacher (resumable, in OUTPUT_DIR/demo_teacher) "
                             f"and write it to {TEACHER_DIR.relative_to(ROOT)}/.")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    settings = QUICK if args.quick else DemoSettings()
    out = Path(args.output_dir).resolve()
    if args.train_teacher:
        torch.set_num_threads(THREADS)
        data_dir, _ = build_data(out, settings)
        train_teacher(data_dir, out / "demo_teacher", settings, resumable=True)
        publish_teacher(out / "demo_teacher", settings)
        return []
    return run(out, settings)


if __name__ == "__main__":
    main()
