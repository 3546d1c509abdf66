"""The seeded study of the paper's three claims: learning curves, then converged students,
run resumably in parts.

    python benchmarks/study.py                      # every part not yet done (make study)
    python benchmarks/study.py --parts evaluators facades/teacher
    python benchmarks/study.py --list               # parts, done or not
    python benchmarks/study.py --scale paper --launcher accelerate   # 256 px, the paper's schedule
    python benchmarks/study_report.py               # tables and figures from the results

Metrics that need no downloaded weights and are no variant's training objective come from the
part ``evaluators`` (``training_scripts/train_evaluators.py``): pix2pix's FCN-score for facades
(label -> photo) and a horse-vs-zebra classifier (target share, classifier Frechet distance).

Study 1 (facades, labels -> photo, paired): a ResNet teacher trained in chunks until its
validation FCN mIoU flattens; students (ngf 16) with no distillation (its curve, mean over seeds,
chooses the step count for every student), output KD, WKD on the high bands (the method), WKD
on the low band, WKD high with the teacher-width discriminator; a smaller student (ngf 8) with no
KD, WKD high (shrunk D) and WKD high (teacher-width D). Study 2 (horse -> zebra, 128 px, the
main study: the facades teacher does not beat its students at this scale): GAN Compression's
published generator is the teacher (``--mode teacher_target``); mobile students (ngf 16, bf16
autocast) with no KD (chooses the steps), WKD high, output KD, WKD low, WKD high with the
teacher-width discriminator, and a smaller student (ngf 8) with no KD and WKD high.

The validation split is carved from train (``work_dir/data``: every 10th facade, 60 horses and
60 zebras); test images are scored once per part, at its final step. A part is done when its
``RESULTS/<part>.json`` exists; a killed part resumes from its runs' checkpoints and curves, and
``--commit`` commits each chunk's curve (``<part>.progress.json``) and each finished part. Trained
networks stay in ``--work_dir`` (not committed); settings: ``study_settings.py``. A part another
live process runs is skipped (``study_lock.py``): two processes can share a list of parts.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import study_pictures  # noqa: E402
from study_curves import (  # noqa: E402
    checkpoint_step,
    flattened,
    mean_curve,
    read_curve,
    train_seconds,
    write_curve,
)
from study_lock import part_lock  # noqa: E402
from study_settings import (  # noqa: E402
    FACADES_VARIANTS,
    H2Z_VARIANTS,
    PLATEAU,
    SCALES,
    TEST_METRICS,
    VALIDATION_METRICS,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS_ROOT = ROOT / "benchmarks" / "study_results" / "converged"
RESULTS = RESULTS_ROOT / "cpu"  # set per --scale in main(): study_results/converged/<scale>/
SHARED = Path(os.environ.get("WKD_HF_SHARED_DATA", ROOT.parent / "shared" / "data"))


def parts() -> list[str]:
    """Every part, the main study (horse -> zebra) first."""
    return (["evaluators", "baselines", "h2z/teacher"] + [f"h2z/{v}" for v in H2Z_VARIANTS]
            + ["facades/teacher"] + [f"facades/{v}" for v in FACADES_VARIANTS] + ["efficiency"])


# ----------------------------------------------------------------------------- running scripts
def command_of(script: str, flags: dict, args: argparse.Namespace, positional=()) -> list[str]:
    """``training_scripts/<script>`` (python or ``accelerate launch``) with ``--k v`` flags
    (a list value repeats the flag)."""
    command = [sys.executable, str(ROOT / "training_scripts" / script), *positional]
    if args.launcher == "accelerate" and script in ("train_teacher.py", "distill.py"):
        command = [sys.executable, "-m", "accelerate.commands.launch", *command[1:]]
    for key, value in flags.items():
        for item in value if isinstance(value, list) else [value]:
            if item is True:
                command.append(f"--{key}")
            elif item is not None and item is not False:
                command += [f"--{key}", str(item)]
    return command


def launch(script: str, flags: dict, args: argparse.Namespace, positional=()) -> None:
    command = command_of(script, flags, args, positional)
    print("$", " ".join(command[1:]), flush=True)
    subprocess.run(command, check=True, cwd=ROOT)


def state_flags(folder: Path) -> dict:
    """Resume a killed or chunked run from its newest checkpoint; start over when it has none."""
    if any(folder.glob("checkpoint-*")):
        return {"resume_from_checkpoint": "latest"}
    return {"overwrite_output_dir": True} if folder.exists() else {}


def train_to(script: str, folder: Path, flags: dict, step: int, args: argparse.Namespace) -> float:
    """Train ``folder``'s run on to ``step`` (a checkpoint at that step); returns wall seconds."""
    if checkpoint_step(folder) >= step:
        return 0.0
    start = time.perf_counter()
    launch(script, {**flags, **state_flags(folder), "output_dir": folder, "max_train_steps": step,
                    "checkpointing_steps": step, "checkpoints_total_limit": 1}, args)
    return time.perf_counter() - start


def evaluate(models: list[Path], data: dict, out: Path, metrics: str, args: argparse.Namespace,
             teacher: Path | None = None, split: str = "test", max_eval: int | None = None) -> dict:
    """``evaluate.py`` of ``models`` on one split; returns its results.json."""
    launch("evaluate.py", {"model": [str(m) for m in models], **data, "output_dir": out,
                           "metrics": metrics, "split": split, "latency_repeats": 0,
                           "teacher": teacher, "max_eval_samples": max_eval,
                           "evaluator_dir": args.work_dir / "evaluators"}, args)
    return json.loads((out / "results.json").read_text())


# ----------------------------------------------------------------------------- data
def link_files(files: list[Path], folder: Path) -> None:
    """Hard links (copies across file systems) of ``files`` in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for path in files:
        target = folder / path.name
        if not target.exists():
            try:
                os.link(path, target)
            except OSError:
                shutil.copy(path, target)


def prepare_data(args: argparse.Namespace) -> None:
    """``work_dir/data``: facades train/ validation/ (every 10th train image) test/; horse2zebra
    trainA/B, validationA/B (the first 60 of each train domain, sorted), testA/B."""
    root = args.work_dir / "data"
    facades = sorted((SHARED / "facades" / "train").glob("*.jpg"), key=lambda p: int(p.stem))
    link_files([p for i, p in enumerate(facades) if i % 10 != 9], root / "facades" / "train")
    link_files([p for i, p in enumerate(facades) if i % 10 == 9], root / "facades" / "validation")
    link_files(sorted((SHARED / "facades" / "test").glob("*.jpg")), root / "facades" / "test")
    for domain in "AB":
        files = sorted((SHARED / "horse2zebra" / f"train{domain}").glob("*.jpg"))
        link_files(files[60:], root / "h2z" / f"train{domain}")
        link_files(files[:60], root / "h2z" / f"validation{domain}")
        link_files(sorted((SHARED / "horse2zebra" / f"test{domain}").glob("*.jpg")),
                   root / "h2z" / f"test{domain}")


def study_data(study: str, s: dict, args: argparse.Namespace) -> dict:
    folder = args.work_dir / "data" / study
    if study == "facades":
        return {"train_data_dir": folder, "direction": "BtoA", "resolution": s["resolution"]}
    return {"train_data_dir": folder, "direction": "AtoB", "resolution": s["h2z_resolution"]}


def facades_teacher(args: argparse.Namespace) -> Path:
    return args.work_dir / "facades" / "teacher" / "seed0"


def h2z_teacher() -> Path:
    return SHARED / "gan_compression_h2z" / "latest_net_G.pth"


def save_pictures(study: str, name: str, model_path: Path, s: dict) -> list[str]:
    paths = study_pictures.save_pictures(study, name, model_path, s, SHARED, RESULTS / study)
    return [str(p.relative_to(ROOT)) for p in paths]


# ----------------------------------------------------------------------------- parts
def run_evaluators(s: dict, args: argparse.Namespace) -> dict:
    """Train the FCN-score segmenter (facades) and the horse/zebra classifier on train images."""
    folder = args.work_dir / "evaluators"
    records = {}
    for kind, study, name, size in (("fcn", "facades", "fcn_evaluator", s["resolution"]),
                                    ("domain", "horse2zebra", "domain_evaluator",
                                     s["h2z_resolution"])):
        if not (folder / f"{name}.json").is_file():
            launch("train_evaluators.py", {"data_dir": SHARED / study, "output_dir": folder,
                                           "resolution": size, "steps": s["evaluator_steps"]},
                   args, positional=[kind])
        records[kind] = json.loads((folder / f"{name}.json").read_text())
    return {"evaluators": records}


def student_flags(variant: dict, s: dict, study: str) -> dict:
    small = s["small_ngf"] if study == "facades" else s["h2z_small_ngf"]
    values = {"KD": s["kd_weight"], "TEACHER_NDF": s["teacher_ndf"], "SMALL_NGF": small,
              "SMALL_NDF": s["small_ndf"]}
    base = ({"student_ngf": s["student_ngf"], "discriminator_ndf": s["shrunk_ndf"]}
            if study == "facades" else
            {"student_ngf": s["h2z_student_ngf"], "student_block_type": "mobile",
             "discriminator_ndf": s["shrunk_ndf"], "mixed_precision": s["h2z_mixed_precision"]})
    return {**base, **{key: values.get(value, value) for key, value in variant.items()}}


def training_flags(study: str, name: str, seed: int, s: dict, args: argparse.Namespace) -> tuple:
    """``(script, flags)`` of one run (everything but its length and folder)."""
    common = {**study_data(study, s, args), "seed": seed, "validation_split": 0,
              "validation_steps": 0, "report_to": "none", "lr_scheduler": s["lr_scheduler"]}
    if name == "teacher":
        return "train_teacher.py", {**common, "load_size": s["load_size"], "mode": "paired",
                                    "generator": "resnet", "ngf": s["teacher_ngf"],
                                    "ndf": s["teacher_ndf"]}
    variants = FACADES_VARIANTS if study == "facades" else H2Z_VARIANTS
    teacher = facades_teacher(args) if study == "facades" else h2z_teacher()
    size = s["load_size"] if study == "facades" else s["h2z_load_size"]
    return "distill.py", {**common, "load_size": size, "teacher_model_name_or_path": teacher,
                          "mode": "paired" if study == "facades" else "teacher_target",
                          **student_flags(variants[name], s, study)}


def chosen_steps(study: str) -> int:
    record = result_path(f"{study}/no_kd")
    if not record.is_file():
        raise SystemExit(f"error: run the part {study}/no_kd first: its curve chooses the step "
                         "count of every student.")
    return json.loads(record.read_text())["chosen_steps"]


def followed_steps(study: str, args: argparse.Namespace) -> int | None:
    """no-KD's chosen step count; None while no-KD still runs and ``--follow`` is set."""
    if result_path(f"{study}/no_kd").is_file() or not args.follow:
        return chosen_steps(study)
    return None


def wait_for_no_kd(study: str, step: int, args: argparse.Namespace) -> int | None:
    """``--follow``: wait until no-KD's curve has reached ``step`` (None) or no-KD has finished
    (its chosen step count), so a follower never trains past the count no-KD will choose."""
    progress = RESULTS / f"{study}/no_kd.progress.json"
    while not result_path(f"{study}/no_kd").is_file():
        if progress.is_file():
            curves = json.loads(progress.read_text())["curves"]
            if curves and all(curves) and min(c[-1]["step"] for c in curves) >= step:
                return None
        time.sleep(args.follow_poll_seconds)
    return chosen_steps(study)


def run_curves(study: str, name: str, s: dict, args: argparse.Namespace) -> dict:
    """Train the part's runs chunk by chunk, a validation point after each chunk, until the fixed
    step count (students after no-KD) or until the mean curve flattens (teacher, no-KD)."""
    seeds = [0] if name == "teacher" else s["seeds"]
    every = {"teacher": s["teacher_curve_every"]}.get(
        name, s["curve_every"] if study == "facades" else s["h2z_curve_every"])
    limit = {"teacher": s["teacher_max_steps"]}.get(
        name, s["student_max_steps"] if study == "facades" else s["h2z_max_steps"])
    leads = name in ("teacher", "no_kd")  # these choose their own length
    fixed = None if leads else followed_steps(study, args)
    least = {"teacher": s["teacher_min_steps"]}.get(  # a GAN's early flat stretch
        name, s["min_steps"] if study == "facades" else s["h2z_min_steps"])
    folders = [args.work_dir / study / name / f"seed{seed}" for seed in seeds]
    metric, higher = PLATEAU[study]
    step = min(len(read_curve(f)) for f in folders) * every  # chunks already scored

    def stop() -> bool:
        if step == 0 or (not leads and fixed is None):  # a follower waits, it does not judge
            return False
        values = mean_curve([read_curve(f) for f in folders], metric)
        return (step >= fixed if fixed is not None else
                step >= limit or (step >= least and flattened(values, higher, s["window"],
                                                              s["tolerance"])))

    while not stop():
        if not leads and fixed is None:  # --follow: never ahead of no-KD's curve
            fixed = wait_for_no_kd(study, step + every, args)
            if stop():
                break
        step += every
        chunk = {}
        for seed, folder in zip(seeds, folders):
            script, flags = training_flags(study, name, seed, s, args)
            chunk[folder] = train_to(script, folder, flags, step, args)
        missing = [f for f in folders if not any(p["step"] == step for p in read_curve(f))]
        if missing:
            results = evaluate(missing, study_data(study, s, args),
                               args.work_dir / "eval" / f"{study}_{name}_val",
                               VALIDATION_METRICS[study], args, split="validation",
                               max_eval=s["validation_max"])
            for folder, record in zip(missing, results["models"]):  # seconds: this sitting's
                write_curve(folder, read_curve(folder) + [{
                    "step": step, "metrics": record["metrics"],
                    "chunk_train_seconds": round(chunk[folder], 1)}])
        curves = [read_curve(f) for f in folders]
        save_progress(f"{study}/{name}", curves, seeds, args)
        print(f"[study] {study}/{name}: step {step}, validation {metric} (mean of {len(seeds)}) "
              f"{mean_curve(curves, metric)[-1]:.4f}", flush=True)
    curves = [read_curve(f) for f in folders]
    values = mean_curve(curves, metric)
    return {"steps": step, "folders": folders, "seeds": seeds, "curves": curves,
            "flattened": fixed is None and step >= least and flattened(
                values, higher, s["window"], s["tolerance"])}


def save_progress(part: str, curves: list[list[dict]], seeds: list[int], args) -> None:
    path = RESULTS / f"{part}.progress.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"part": part, "seeds": seeds, "curves": curves}, indent=1) + "\n")
    if args.commit:
        commit_files([path], f"Study: curve of {part} to step {curves[0][-1]['step']}")


def run_trained(study: str, name: str, s: dict, args: argparse.Namespace) -> dict:
    """A teacher or a student variant: its curves, then the test scores of its final weights."""
    if study == "facades" and name != "teacher" and not result_path("facades/teacher").is_file():
        raise SystemExit("error: run the part facades/teacher first.")
    done = run_curves(study, name, s, args)
    teacher = None if name == "teacher" else (
        facades_teacher(args) if study == "facades" else h2z_teacher())
    results = evaluate(done["folders"], study_data(study, s, args),
                       args.work_dir / "eval" / f"{study}_{name}_test", TEST_METRICS[study], args,
                       teacher=teacher)
    runs = [{"seed": seed, "folder": f"{name}/seed{seed}", "steps": done["steps"],
             "train_seconds": train_seconds(curve), "curve": curve,
             **model_record(record)}
            for seed, curve, record in zip(done["seeds"], done["curves"], results["models"])]
    record = {"runs": runs, "evaluation": results["settings"], "flattened": done["flattened"],
              "pictures": save_pictures(study, name, done["folders"][0], s)}
    if name != "teacher":
        record["flags"] = training_flags(study, name, 0, s, args)[1]
    if name in ("teacher", "no_kd"):
        record["chosen_steps"] = done["steps"]
    return record


def run_teacher_h2z(s: dict, args: argparse.Namespace) -> dict:
    results = evaluate([h2z_teacher()], study_data("h2z", s, args),
                       args.work_dir / "eval" / "h2z_teacher", TEST_METRICS["h2z"], args)
    return {"runs": [{"seed": None, "folder": "GAN Compression horse2zebra compressed student",
                      **model_record(results["models"][0])}],
            "pictures": save_pictures("h2z", "teacher", h2z_teacher(), s),
            "evaluation": results["settings"]}


def model_record(record: dict) -> dict:
    keep = ("params", "macs", "metrics", "bands", "teacher_bands")
    return {key: record[key] for key in keep if record.get(key) is not None}


def run_efficiency(s: dict, args: argparse.Namespace) -> dict:
    """Params, MACs and CPU latency (interleaved rounds) of the studied networks."""
    import study_efficiency

    w = args.work_dir
    return study_efficiency.measure({
        "facades teacher": (facades_teacher(args), s["resolution"]),
        "facades student": (w / "facades" / "wkd_high" / "seed0", s["resolution"]),
        "facades small student": (w / "facades" / "small_wkd_high" / "seed0", s["resolution"]),
        "h2z teacher (GAN Compression)": (h2z_teacher(), s["h2z_resolution"]),
        "h2z student": (w / "h2z" / "wkd_high" / "seed0", s["h2z_resolution"]),
        "h2z small student": (w / "h2z" / "small_wkd_high" / "seed0", s["h2z_resolution"])},
        s["latency_rounds"])


def run_baselines(s: dict, args: argparse.Namespace) -> dict:
    """The evaluators' scores of images no network made (``study_baselines``)."""
    import study_baselines

    evaluators, data = args.work_dir / "evaluators", args.work_dir / "data"
    return {"h2z_untranslated_horses": study_baselines.untranslated_domain_scores(
                data / "h2z", s["h2z_resolution"], evaluators),
            "facades_label_maps_as_photos": study_baselines.label_map_fcn_scores(
                data / "facades", s["resolution"], evaluators)}


def run_part(part: str, s: dict, args: argparse.Namespace) -> dict:
    if part == "evaluators":
        return run_evaluators(s, args)
    if part == "baselines":
        return run_baselines(s, args)
    if part == "h2z/teacher":
        return run_teacher_h2z(s, args)
    if part == "efficiency":
        return run_efficiency(s, args)
    study, name = part.split("/")
    return run_trained(study, name, s, args)


# ----------------------------------------------------------------------------- bookkeeping
def machine() -> dict:
    import torch

    return {"platform": platform.platform(),
            "processor": platform.processor() or platform.machine(),
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


def commit_files(files: list[Path | str], message: str) -> None:
    files = [str(Path(f).resolve().relative_to(ROOT)) if Path(f).is_absolute() else str(f)
             for f in files]
    for attempt in range(5):  # another git command (a second study process) may hold the lock
        added = subprocess.run(["git", "add", "--", *files], cwd=ROOT)
        done = added.returncode == 0 and subprocess.run(
            ["git", "commit", "-q", "-m", message, "--", *files], cwd=ROOT).returncode == 0
        if done:
            break
        time.sleep(3 * (attempt + 1))
    if not done:  # e.g. a concurrent git command held the index lock; the files are on disk
        print(f"[study] could not commit {files}; commit them by hand.", flush=True)


def commit(part: str, record: dict) -> None:
    commit_files([result_path(part), *record.get("pictures", [])], f"Study: results of {part}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="Settings: benchmarks/study_settings.py.")
    parser.add_argument("--parts", nargs="*", default=None,
                        help="Parts to run (default: every part not yet done, in order).")
    parser.add_argument("--scale", choices=sorted(SCALES), default="cpu",
                        help="Settings: cpu (64/128 px, curves to where no-KD flattens), smoke (a "
                             "few steps, to try the pipeline) or paper (256 px).")
    parser.add_argument("--work_dir", type=Path, default=ROOT / "study_work",
                        help="Trained networks and evaluation folders (default: study_work/).")
    parser.add_argument("--launcher", choices=("python", "accelerate"), default="python",
                        help="Run the training scripts with python or `accelerate launch`.")
    parser.add_argument("--redo", action="store_true", help="Rerun parts that are done.")
    parser.add_argument("--commit", action="store_true",
                        help="git-commit each part's result files as it finishes.")
    parser.add_argument("--list", action="store_true", help="List the parts and exit.")
    parser.add_argument("--follow", action="store_true",
                        help="Let the students after no-KD train beside it (a second process), "
                             "never ahead of its curve, until it chooses the step count.")
    parser.add_argument("--follow_poll_seconds", type=float, default=60.0, help=argparse.SUPPRESS)
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
    prepare_data(args)
    for part in args.parts or parts():
        with part_lock(args.work_dir / "locks", part) as holder:
            if holder is not None:
                print(f"[study] {part}: process {holder} runs it, skipped", flush=True)
            elif result_path(part).is_file() and not args.redo:
                print(f"[study] {part}: done", flush=True)
            else:
                run_and_record(part, settings, args)
    return 0


def run_and_record(part: str, settings: dict, args: argparse.Namespace) -> None:
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


if __name__ == "__main__":
    sys.exit(main())
