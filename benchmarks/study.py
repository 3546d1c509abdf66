"""The seeded study of the paper's three claims, run resumably in parts.

    python benchmarks/study.py                      # every part not yet done (make study)
    python benchmarks/study.py --parts facades/teacher facades/wkd_high
    python benchmarks/study.py --list               # parts, done or not
    python benchmarks/study.py --scale paper --launcher accelerate   # 256 px, the paper's schedule
    python benchmarks/study_report.py               # tables and figures from the results

Study 1 (facades, labels -> photo, paired): a ResNet teacher, then students of one width trained
for the same steps with no distillation, output KD, feature KD, WKD on the high bands (the
method), on the low band only, on all bands, and WKD high with the teacher-width discriminator.
Study 2 (horse -> zebra): GAN Compression's published compressed generator is the teacher
(``--mode teacher_target``); a smaller mobile student learns from it with and without WKD.

Every part trains with the project's own scripts and scores with ``training_scripts/evaluate.py``
on the test split (nothing is selected on test: the final weights are scored). A part is done when
its ``RESULTS/<part>.json`` exists; a killed part resumes from its runs' checkpoints. Trained
networks stay in ``--work_dir`` (not committed); ``RESULTS`` holds only small JSON and PNG files,
and ``--commit`` commits them after each part. All settings are in ``SCALES`` below.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS_ROOT = ROOT / "benchmarks" / "study_results"
RESULTS = RESULTS_ROOT / "cpu"  # set per --scale in main(): study_results/<scale>/
SHARED = Path(os.environ.get("WKD_HF_SHARED_DATA", ROOT.parent / "shared" / "data"))

# One place for every setting. "cpu": what fits ~3 h of a 2-core CPU; "paper": the paper's
# 256 px protocol (pix2pix: 286 -> 256 jitter, 200 epochs of batch 1 = 80k steps on 400 facades).
SCALES = {
    "cpu": {"resolution": 64, "load_size": 64, "teacher_ngf": 64, "teacher_steps": 2000,
            "student_ngf": 16, "student_steps": 600, "seeds": [0, 1, 2], "kd_weight": 10.0,
            "shrunk_ndf": 32, "teacher_ndf": 64, "h2z_resolution": 128, "h2z_load_size": 128,
            "h2z_student_ngf": 8, "h2z_steps": 600, "h2z_max_eval": 120,
            "checkpointing_steps": 200, "latency_rounds": 30},
    "smoke": {"resolution": 32, "load_size": 32, "teacher_ngf": 8, "teacher_steps": 2,
              "student_ngf": 4, "student_steps": 2, "seeds": [0, 1], "kd_weight": 10.0,
              "shrunk_ndf": 8, "teacher_ndf": 16, "h2z_resolution": 32, "h2z_load_size": 32,
              "h2z_student_ngf": 4, "h2z_steps": 2, "h2z_max_eval": 4,
              "checkpointing_steps": 1, "latency_rounds": 3},
    "paper": {"resolution": 256, "load_size": 286, "teacher_ngf": 64, "teacher_steps": 80000,
              "student_ngf": 16, "student_steps": 80000, "seeds": [0, 1, 2], "kd_weight": 10.0,
              "shrunk_ndf": 32, "teacher_ndf": 64, "h2z_resolution": 256, "h2z_load_size": 286,
              "h2z_student_ngf": 8, "h2z_steps": 200000, "h2z_max_eval": 120,
              "checkpointing_steps": 5000, "latency_rounds": 30},
}

# Study 1 students: name -> distill.py flags (KD weights: the scale's kd_weight, same for all).
FACADES_VARIANTS = {
    "no_kd": {"wkd_bands": "none"},
    "output_kd": {"wkd_bands": "none", "kd_output_weight": "KD"},
    "feature_kd": {"wkd_bands": "none", "kd_feature_weight": "KD"},
    "wkd_high": {"wkd_bands": "high", "lambda_wkd": "KD"},
    "wkd_low": {"wkd_bands": "low", "lambda_wkd": "KD"},
    "wkd_all": {"wkd_bands": "all", "lambda_wkd": "KD"},
    "wkd_high_teacher_D": {"wkd_bands": "high", "lambda_wkd": "KD", "discriminator_ndf": "TEACHER_NDF"},
}
H2Z_VARIANTS = {"no_kd": {"wkd_bands": "none"}, "wkd_high": {"wkd_bands": "high", "lambda_wkd": "KD"}}
NUM_PICTURES = 4


def parts() -> list[str]:
    return (["facades/teacher"] + [f"facades/{v}" for v in FACADES_VARIANTS]
            + ["facades/band_energy", "h2z/teacher"] + [f"h2z/{v}" for v in H2Z_VARIANTS]
            + ["efficiency"])


# ----------------------------------------------------------------------------- running scripts
def launch(script: str, flags: dict, args: argparse.Namespace) -> None:
    """Run ``training_scripts/<script>`` (python or ``accelerate launch``) with ``--k v`` flags."""
    command = [sys.executable, str(ROOT / "training_scripts" / script)]
    if args.launcher == "accelerate":
        command = [sys.executable, "-m", "accelerate.commands.launch", *command[1:]]
    for key, value in flags.items():
        if value is True:
            command.append(f"--{key}")
        elif value is not None and value is not False:
            command += [f"--{key}", str(value)]
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def finished(folder: Path) -> bool:
    return all((folder / name).is_file() for name in
               ("args.json", "config.json", "diffusion_pytorch_model.safetensors"))


def state_flags(folder: Path) -> dict:
    """Resume a killed run from its newest checkpoint; start over when it has none."""
    if any(folder.glob("checkpoint-*")):
        return {"resume_from_checkpoint": "latest"}
    return {"overwrite_output_dir": True} if folder.exists() else {}


def train(script: str, folder: Path, flags: dict, args: argparse.Namespace) -> float:
    """Train into ``folder`` unless it already holds a finished run; returns wall seconds."""
    if finished(folder):
        return 0.0
    start = time.perf_counter()
    launch(script, {**flags, **state_flags(folder), "output_dir": folder}, args)
    return time.perf_counter() - start


def evaluate(models: list[Path], teacher: Path | None, data: dict, out: Path,
             args: argparse.Namespace) -> dict:
    """``evaluate.py`` on the test split (PSNR/SSIM/L1 where paired, per-band fidelity)."""
    flags = {"metrics": "psnr,ssim,l1,bands", **data, "output_dir": out, "latency_repeats": 0,
             "teacher": teacher}
    command = [sys.executable, str(ROOT / "training_scripts" / "evaluate.py")]
    for model in models:
        command += ["--model", str(model)]
    for key, value in flags.items():
        if value is not None:
            command += [f"--{key}", str(value)]
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)
    return json.loads((out / "results.json").read_text())


# ----------------------------------------------------------------------------- data
def facades_data(s: dict) -> dict:
    return {"train_data_dir": SHARED / "facades", "direction": "BtoA",
            "resolution": s["resolution"], "load_size": s["load_size"]}


def h2z_data(s: dict) -> dict:
    return {"train_data_dir": SHARED / "horse2zebra", "direction": "AtoB",
            "resolution": s["h2z_resolution"], "load_size": s["h2z_load_size"]}


def h2z_teacher() -> Path:
    return SHARED / "gan_compression_h2z" / "latest_net_G.pth"


def picture_inputs(study: str, s: dict):
    """The first NUM_PICTURES test images (sorted by name): N x 3 x R x R in [-1, 1], and targets."""
    import numpy as np
    import torch
    from PIL import Image

    def tensor(image: Image.Image, size: int) -> torch.Tensor:
        array = np.asarray(image.convert("RGB").resize((size, size), Image.BICUBIC), np.float32)
        return torch.from_numpy(array).permute(2, 0, 1) / 127.5 - 1

    if study == "facades":
        files = sorted((SHARED / "facades" / "test").glob("*.jpg"), key=lambda p: int(p.stem))
        images = [Image.open(f) for f in files[:NUM_PICTURES]]
        size = s["resolution"]
        halves = [(im.crop((im.width // 2, 0, im.width, im.height)),
                   im.crop((0, 0, im.width // 2, im.height))) for im in images]
        return (torch.stack([tensor(label, size) for label, _ in halves]),
                torch.stack([tensor(photo, size) for _, photo in halves]))
    files = sorted((SHARED / "horse2zebra" / "testA").glob("*.jpg"))[:NUM_PICTURES]
    return torch.stack([tensor(Image.open(f), s["h2z_resolution"]) for f in files]), None


def save_pictures(study: str, name: str, model_path: Path, s: dict) -> str:
    """One column of outputs on the fixed test images: ``RESULTS/<study>/<name>.png``."""
    import torch

    from wkd_hf.recipes import image_grid, load_generator

    inputs, _ = picture_inputs(study, s)
    model = load_generator(str(model_path)).eval()
    with torch.inference_mode():
        outputs = model(inputs)
    path = RESULTS / study / f"{name}.png"
    image_grid({name: outputs}).save(path)
    return str(path.relative_to(ROOT))


def save_reference_pictures(study: str, s: dict) -> None:
    from wkd_hf.recipes import image_grid

    inputs, targets = picture_inputs(study, s)
    image_grid({"input": inputs}).save(RESULTS / study / "input.png")
    if targets is not None:
        image_grid({"target": targets}).save(RESULTS / study / "target.png")


# ----------------------------------------------------------------------------- parts
def run_teacher_facades(s: dict, args: argparse.Namespace) -> dict:
    folder = args.work_dir / "facades" / "teacher"
    wall = train("train_teacher.py", folder, {
        **facades_data(s), "mode": "paired", "generator": "resnet", "ngf": s["teacher_ngf"],
        "ndf": s["teacher_ndf"], "max_train_steps": s["teacher_steps"], "seed": 0,
        "validation_steps": 0, "report_to": "none", "checkpointing_steps": s["checkpointing_steps"],
        "checkpoints_total_limit": 1}, args)
    results = evaluate([folder], None, facades_data(s), args.work_dir / "eval" / "facades_teacher", args)
    save_reference_pictures("facades", s)
    return {"runs": [{"seed": 0, "folder": str(folder.name), "train_seconds": round(wall, 1),
                      "steps": s["teacher_steps"], **model_record(results["models"][0])}],
            "pictures": [save_pictures("facades", "teacher", folder, s)],
            "evaluation": results["settings"]}


def student_flags(variant: dict, s: dict) -> dict:
    values = {"KD": s["kd_weight"], "TEACHER_NDF": s["teacher_ndf"]}
    return {key: values.get(value, value) for key, value in variant.items()}


def run_students(study: str, name: str, s: dict, args: argparse.Namespace) -> dict:
    """Train every seed of one variant, then score all seeds in one evaluate.py call."""
    paired = study == "facades"
    teacher = args.work_dir / "facades" / "teacher" if paired else h2z_teacher()
    data = facades_data(s) if paired else h2z_data(s)
    variant = (FACADES_VARIANTS if paired else H2Z_VARIANTS)[name]
    steps = s["student_steps"] if paired else s["h2z_steps"]
    if paired and not finished(teacher):
        raise SystemExit("error: run the part facades/teacher first.")
    folders, walls = [], []
    for seed in s["seeds"]:
        folder = args.work_dir / study / name / f"seed{seed}"
        walls.append(train("distill.py", folder, {
            **data, "teacher_model_name_or_path": teacher,
            "mode": "paired" if paired else "teacher_target",
            "student_ngf": s["student_ngf"] if paired else s["h2z_student_ngf"],
            "student_block_type": None if paired else "mobile",
            "discriminator_ndf": s["shrunk_ndf"], **student_flags(variant, s),
            "max_train_steps": steps, "seed": seed, "validation_steps": 0, "report_to": "none",
            "checkpointing_steps": s["checkpointing_steps"], "checkpoints_total_limit": 1}, args))
        folders.append(folder)
    eval_data = dict(data)
    if not paired:
        eval_data.update(metrics="bands", max_eval_samples=s["h2z_max_eval"])
    results = evaluate(folders, teacher, eval_data, args.work_dir / "eval" / f"{study}_{name}", args)
    runs = [{"seed": seed, "folder": f"{name}/seed{seed}", "train_seconds": round(wall, 1),
             "steps": steps, **model_record(record)}
            for seed, wall, record in zip(s["seeds"], walls, results["models"])]
    return {"flags": student_flags(variant, s), "runs": runs, "evaluation": results["settings"],
            "pictures": [save_pictures(study, f"{name}_seed{s['seeds'][0]}", folders[0], s)]}


def run_teacher_h2z(s: dict, args: argparse.Namespace) -> dict:
    (RESULTS / "h2z").mkdir(parents=True, exist_ok=True)
    data = {**h2z_data(s), "metrics": "bands", "max_eval_samples": s["h2z_max_eval"]}
    results = evaluate([h2z_teacher()], None, data, args.work_dir / "eval" / "h2z_teacher", args)
    save_reference_pictures("h2z", s)
    return {"runs": [{"seed": None, "folder": "GAN Compression horse2zebra compressed student",
                      **model_record(results["models"][0])}],
            "pictures": [save_pictures("h2z", "teacher", h2z_teacher(), s)],
            "evaluation": results["settings"]}


def model_record(record: dict) -> dict:
    keep = ("params", "macs", "metrics", "bands", "teacher_bands")
    return {key: record[key] for key in keep if record.get(key) is not None}


def run_efficiency(s: dict, args: argparse.Namespace) -> dict:
    """Params, MACs and CPU latency (interleaved rounds, median [p10, p90]) of the studied nets."""
    import torch

    from wkd_hf.metrics.efficiency import count_macs, count_parameters, interleaved, quantiles
    from wkd_hf.recipes import load_generator

    nets = {"facades teacher": (args.work_dir / "facades" / "teacher", s["resolution"]),
            "facades student": (args.work_dir / "facades" / "wkd_high" / "seed0", s["resolution"]),
            "h2z teacher (GAN Compression)": (h2z_teacher(), s["h2z_resolution"]),
            "h2z student": (args.work_dir / "h2z" / "wkd_high" / "seed0", s["h2z_resolution"])}
    models = {name: (load_generator(str(path)).eval(), torch.randn(1, 3, size, size))
              for name, (path, size) in nets.items()}
    with torch.inference_mode():
        times = interleaved({name: (lambda m=m, x=x: m(x)) for name, (m, x) in models.items()},
                            repeats=s["latency_rounds"], warmup=3)
    rows = {}
    for name, (model, x) in models.items():
        q = quantiles(times[name])
        rows[name] = {"resolution": x.shape[-1], "params": count_parameters(model),
                      "macs": count_macs(model, x.shape[-1]), "latency_ms_median": q["median"],
                      "latency_ms_p10": q["p10"], "latency_ms_p90": q["p90"]}
    return {"models": rows, "threads": torch.get_num_threads(), "rounds": s["latency_rounds"],
            "batch_size": 1}


def band_magnitudes(split, images) -> dict[str, tuple[float, int]]:
    """Sum of |coefficient| and count per band (LL; LH/HL/HH pooled over the levels)."""
    ll, highs = split(images)
    out = {"LL": (float(ll.abs().sum()), ll.numel())}
    for b, name in enumerate(("LH", "HL", "HH")):
        out[name] = (sum(float(h[:, :, b].abs().sum()) for h in highs),
                     sum(h[:, :, b].numel() for h in highs))
    return out


def run_band_energy(s: dict, args: argparse.Namespace) -> dict:
    """How much detail each band carries, relative to the real photos: mean |coefficient| of the
    generated images over that of the test photos, per band (1 = as much as the photos; < 1 blurs,
    > 1 adds texture or artefacts). Unlike the paired distances, this does not reward blur."""
    import torch

    from wkd_hf.data import PairedTransform, build_eval_dataloader, load_paired_dataset
    from wkd_hf.recipes import load_generator
    from wkd_hf.wavelets import WaveletBandSplit

    test = load_paired_dataset(train_data_dir=str(SHARED / "facades"), split="test", direction="BtoA")
    batches = list(build_eval_dataloader(test, PairedTransform(s["resolution"], train=False), 16))
    split = WaveletBandSplit("haar", 3)

    def magnitudes(images_of_batch) -> dict[str, float]:
        totals: dict[str, list[float]] = {}
        for batch in batches:
            for band, (total, count) in band_magnitudes(split, images_of_batch(batch)).items():
                totals.setdefault(band, [0.0, 0])
                totals[band][0] += total
                totals[band][1] += count
        return {band: total / count for band, (total, count) in totals.items()}

    with torch.inference_mode():
        photos = magnitudes(lambda batch: batch["target"])
        folders = {"teacher": [args.work_dir / "facades" / "teacher"]}
        folders.update({name: [args.work_dir / "facades" / name / f"seed{seed}" for seed in s["seeds"]]
                        for name in FACADES_VARIANTS})
        ratios = {}
        for name, paths in folders.items():
            ratios[name] = []
            for path in paths:
                model = load_generator(str(path)).eval()
                generated = magnitudes(lambda batch, model=model: model(batch["source"]))
                ratios[name].append({band: generated[band] / photos[band] for band in photos})
    return {"band_magnitude_ratio": ratios, "levels": 3, "num_images": len(test),
            "photo_magnitudes": photos}


def run_part(part: str, s: dict, args: argparse.Namespace) -> dict:
    if part == "facades/teacher":
        return run_teacher_facades(s, args)
    if part == "facades/band_energy":
        return run_band_energy(s, args)
    if part == "h2z/teacher":
        return run_teacher_h2z(s, args)
    if part == "efficiency":
        return run_efficiency(s, args)
    study, name = part.split("/")
    return run_students(study, name, s, args)


# ----------------------------------------------------------------------------- bookkeeping
def machine() -> dict:
    import torch

    return {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(), "torch": torch.__version__, "threads": torch.get_num_threads(),
            "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None}


def result_path(part: str) -> Path:
    return RESULTS / f"{part}.json"


def portable(text: str) -> str:
    """Paths relative to the repository (``../shared/data/...``), never this machine's."""
    for path, shown in ((SHARED, "../shared/data"), (ROOT, ".")):
        text = text.replace(str(path.resolve()), shown).replace(str(path), shown)
    return text


def write_result(part: str, record: dict) -> Path:
    path = result_path(part)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.tmp")
    tmp.write_text(portable(json.dumps(record, indent=1, default=str)) + "\n")
    os.replace(tmp, path)
    return path


def commit(part: str, record: dict) -> None:
    files = [str(result_path(part).relative_to(ROOT))] + record.get("pictures", [])
    for extra in ("input.png", "target.png"):
        path = RESULTS / part.split("/")[0] / extra
        if path.is_file():
            files.append(str(path.relative_to(ROOT)))
    added = subprocess.run(["git", "add", "--", *files], cwd=ROOT)
    done = added.returncode == 0 and subprocess.run(
        ["git", "commit", "-q", "-m", f"Study: results of {part}", "--", *files], cwd=ROOT
    ).returncode == 0
    if not done:  # e.g. a concurrent git command held the index lock; the files are on disk
        print(f"[study] {part}: could not commit {files}; commit them by hand.", flush=True)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Settings: SCALES at the top of this file.")
    parser.add_argument("--parts", nargs="*", default=None,
                        help="Parts to run (default: every part not yet done, in order).")
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu",
                        help="Settings: cpu (64/128 px, a few hundred steps) or paper (256 px).")
    parser.add_argument("--work_dir", type=Path, default=ROOT / "study_work",
                        help="Trained networks and evaluation folders (default: study_work/).")
    parser.add_argument("--launcher", choices=("python", "accelerate"), default="python",
                        help="Run the training scripts with python or `accelerate launch`.")
    parser.add_argument("--redo", action="store_true", help="Rerun parts that are done.")
    parser.add_argument("--commit", action="store_true",
                        help="git-commit each part's result files as it finishes.")
    parser.add_argument("--list", action="store_true", help="List the parts and exit.")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    global RESULTS
    RESULTS = RESULTS_ROOT / args.scale
    if args.list:
        for part in parts():
            print(f"{'done' if result_path(part).is_file() else 'todo':5} {part}")
        return 0
    unknown = [p for p in args.parts or [] if p not in parts()]
    if unknown:
        raise SystemExit(f"error: unknown part(s) {unknown}; choose from {parts()}")
    if not (SHARED / "facades").is_dir():
        raise SystemExit(f"error: the study needs the shared data folder ({SHARED}); "
                         "set WKD_HF_SHARED_DATA to the folder holding facades/ and horse2zebra/.")
    settings = SCALES[args.scale]
    for part in args.parts or parts():
        if result_path(part).is_file() and not args.redo:
            print(f"[study] {part}: done", flush=True)
            continue
        print(f"[study] {part}: running", flush=True)
        if "/" in part:
            (RESULTS / part.split("/")[0]).mkdir(parents=True, exist_ok=True)
        start = time.perf_counter()
        record = run_part(part, settings, args)
        record.update(part=part, scale=args.scale, settings=settings, machine=machine(),
                      wall_seconds=round(time.perf_counter() - start, 1),
                      finished=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
        write_result(part, record)
        if args.commit:
            commit(part, record)
        print(f"[study] {part}: done in {record['wall_seconds']:.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
