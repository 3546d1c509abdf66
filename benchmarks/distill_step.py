"""Time one real distillation step on this machine (CPU), configurations interleaved.

    python benchmarks/distill_step.py [--json out.json] [--only wkd|cycle|precision] [--quick]

Table 1 (``wkd``): cost of the WKD term in a pix2pix (paired) step. Table 2 (``cycle``): one
CycleGAN-style iteration in the authors' released settings, in our defaults, and a plain CycleGAN
teacher iteration. Each step mirrors ``wkd_hf.training._train_step`` without accelerate:
generate, D loss + backward + Adam step, G loss + backward + Adam step. Configurations run
round-robin (a, b, c, a, b, c, ...) after warm-up, so machine noise hits them alike; ratios are
taken per round and reported as median [p10, p90].
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import sys
import time
from pathlib import Path

import torch

try:
    import wkd_hf  # noqa: F401
except ImportError:  # run from a checkout without `pip install -e .`
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from wkd_hf.distillation import CycleDistiller, PairedDistiller, WKDConfig
from wkd_hf.losses import OutputDistillationLoss, WaveletDistillationLoss
from wkd_hf.metrics.efficiency import interleaved, quantiles
from wkd_hf.models import PatchDiscriminator, ResnetGenerator
from wkd_hf.precision import autocast_like_prepared, cpu_bf16_support

# Quoted from the issue; NOT measured here.
REFERENCE = {"authors_paper_mode_s": (1.5, 2.0), "upstream_cyclegan_teacher_s": (4.4, 4.6)}


def machine_info(threads: int) -> dict:
    """CPU model, core count, torch/python versions and the thread count used."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as handle:
            cpu = next(line.split(":", 1)[1].strip() for line in handle if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "torch": torch.__version__,
            "python": platform.python_version(), "threads": threads}


def adam(modules) -> torch.optim.Adam:
    """pix2pix's Adam (lr 2e-4, betas 0.5/0.999) over the parameters of ``modules``."""
    return torch.optim.Adam([p for m in modules for p in m.parameters()], lr=2e-4, betas=(0.5, 0.999))


def make_step(distiller, generators, discriminators, batch, record=None):
    """A closure doing exactly ``_train_step``'s work: D update on detached fakes, then G update.
    ``record`` (a list) collects each step's float32 losses ``{"d", "g", *G parts}``."""
    opt_g, opt_d = adam(generators), adam(discriminators)

    def step() -> None:
        outputs = distiller.generate(batch)
        d_loss, _ = distiller.discriminator_loss(batch, outputs)
        d_loss.backward()
        opt_d.step()
        opt_d.zero_grad(set_to_none=True)
        g_loss, g_logs = distiller.generator_loss(batch, outputs)
        g_loss.backward()
        opt_g.step()
        opt_g.zero_grad(set_to_none=True)
        losses = {"d": float(d_loss.detach()), "g": float(g_loss.detach()),  # the loop logs them
                  **{k: float(v) for k, v in g_logs.items()}}
        if record is not None:
            record.append(losses)
    return step


def make_loss_only(loss_fn, student_out, teacher_out):
    """Forward + backward of a KD loss alone on fixed generator-sized outputs."""
    def step() -> None:
        student = student_out.detach().requires_grad_(True)
        loss_fn(student, teacher_out).backward()
    return step


def ratio(times: dict, name: str, ref: str) -> dict:
    """Per-round ratio ``name / ref`` (same round, so shared noise cancels), summarised."""
    return quantiles([a / b for a, b in zip(times[name], times[ref])])


def generator(ngf: int, n_blocks: int) -> ResnetGenerator:
    return ResnetGenerator(ngf=ngf, n_blocks=n_blocks, norm_type="instance")


def bench_wkd(args) -> dict:
    """Table 1: no KD vs WKD (haar, 4 levels, l1) vs output L1 KD, pix2pix step, + losses alone."""
    q, res = args.quick, args.resolution
    nets = {"teacher_ngf": 8 if q else 64, "student_ngf": args.student_ngf,
            "n_blocks": 2 if q else 9, "ndf": 8 if q else 32, "resolution": res}
    torch.manual_seed(0)
    teacher = generator(nets["teacher_ngf"], nets["n_blocks"])
    student0 = generator(args.student_ngf, nets["n_blocks"])
    disc0 = PatchDiscriminator(in_channels=6, ndf=nets["ndf"], n_layers=3, norm_type="batch")
    batch = {"source": torch.rand(args.batch_size, 3, res, res) * 2 - 1,
             "target": torch.rand(args.batch_size, 3, res, res) * 2 - 1}
    configs = {
        "no_kd": WKDConfig(mode="paired", bands="none"),
        "wkd_high": WKDConfig(mode="paired", bands="high", wave="haar", levels=4, distance="l1"),
        "output_kd": WKDConfig(mode="paired", bands="none", kd_output_weight=1.0),
    }
    steps = {}
    for name, config in configs.items():
        student, disc = copy.deepcopy(student0), copy.deepcopy(disc0)
        distiller = PairedDistiller(student, disc, config, teacher if config.uses_teacher else None)
        steps[name] = make_step(distiller, [student], [disc], batch)
    with torch.no_grad():
        student_out, teacher_out = student0(batch["source"]), teacher(batch["source"])
    steps["wkd_loss_only"] = make_loss_only(WaveletDistillationLoss("haar", 4, "high", "l1"),
                                            student_out, teacher_out)
    steps["l1_loss_only"] = make_loss_only(OutputDistillationLoss("l1"), student_out, teacher_out)
    times = {name: [ms / 1000 for ms in values]  # seconds
             for name, values in interleaved(steps, args.repeats, args.warmup, args.clock).items()}
    rows = {name: {**quantiles(t), "times": t, "vs_no_kd": ratio(times, name, "no_kd"),
                   "vs_output_kd": ratio(times, name, "output_kd")} for name, t in times.items()}
    share = {"wkd_loss_over_wkd_step": ratio(times, "wkd_loss_only", "wkd_high"),
             "wkd_minus_output_kd_over_wkd_step": quantiles(
                 [(b - c) / b for b, c in zip(times["wkd_high"], times["output_kd"])])}
    return {"nets": nets, "configs": rows, "share": share}


def bench_cycle(args) -> dict:
    """Table 2: paper-mode CycleDistiller vs ours (ndf 32 D) vs a plain CycleGAN teacher step."""
    q, res = args.quick, args.resolution
    n_blocks, big, small = (2, 8, 4) if q else (9, 64, 16)
    nets = {"teacher_ngf": big, "student_ngf": small, "n_blocks": n_blocks, "ndf_paper": big,
            "ndf_ours": big // 2, "resolution": res}
    torch.manual_seed(0)
    teachers = {k: generator(big, n_blocks) for k in ("a2b", "b2a")}
    students0 = {k: generator(small, n_blocks) for k in ("a2b", "b2a")}

    def discs(ndf):
        return {k: PatchDiscriminator(in_channels=3, ndf=ndf, n_layers=3, norm_type="instance")
                for k in ("a2b", "b2a")}

    def batch(size):
        return {d: torch.rand(args.batch_size, 3, size, size) * 2 - 1 for d in "AB"}

    kd = {"mode": "cycle", "wave": "haar", "levels": 4, "bands": "high", "lambda_wkd": 0.4}
    setups = {"paper_mode": (students0, discs(big), WKDConfig(**kd, distance="l2"), teachers, res),
              "ours_default": (students0, discs(big // 2), WKDConfig(**kd, distance="l1"), teachers, res)}
    for tres in [] if args.no_teacher_step else args.teacher_resolution:
        setups[f"teacher_{tres}px"] = ({k: generator(big, n_blocks) for k in ("a2b", "b2a")},
                                       discs(big), WKDConfig(mode="cycle", bands="none"), None, tres)
    setups["paper_mode_bf16"] = setups["paper_mode"]  # --mixed_precision bf16 (teachers too)
    steps = {}
    for name, (gens, ds, config, tchs, size) in setups.items():
        gens, ds = copy.deepcopy(gens), copy.deepcopy(ds)
        tchs = copy.deepcopy(tchs) if name.endswith("_bf16") else tchs
        if name.endswith("_bf16"):
            for module in [*gens.values(), *ds.values(), *tchs.values()]:
                autocast_like_prepared(module, BF16)
        distiller = CycleDistiller(gens, ds, config, teachers=tchs)
        steps[name] = make_step(distiller, gens.values(), ds.values(), batch(size))
    if args.authors_code:
        from authors_code import authors_step  # benchmarks/authors_code.py

        steps["authors_code"] = authors_step(args.authors_code, res, args.batch_size, small, big,
                                             big)
        setups["authors_code"] = (None, None, None, None, res)
    times = {name: [ms / 1000 for ms in values]  # seconds
             for name, values in interleaved(steps, args.repeats, args.warmup, args.clock).items()}
    rows = {name: {**quantiles(t), "times": t, "resolution": setups[name][4],
                   "vs_paper_mode": ratio(times, name, "paper_mode"),
                   **({"vs_authors_code": ratio(times, name, "authors_code")}
                      if "authors_code" in times else {})} for name, t in times.items()}
    return {"nets": nets, "configs": rows}


BF16 = torch.autocast("cpu", dtype=torch.bfloat16)  # what accelerate's --mixed_precision bf16 uses
PRECISIONS = {  # name: (autocast students+D, autocast teacher, channels_last, batch multiplier)
    "fp32": (False, False, False, 1),  # today's default (--mixed_precision no)
    "bf16_students": (True, False, False, 1),  # --mixed_precision bf16 before: teacher in fp32
    "bf16": (True, True, False, 1),  # --mixed_precision bf16 now: teacher autocast too
    "fp32_cl": (False, False, True, 1),
    "bf16_cl": (True, True, True, 1),
    "bf16_batch4": (True, True, False, 4),
    "bf16_compile": (True, True, False, 1),  # with --compile: torch.compile'd networks
}


def bench_precision(args) -> dict:
    """Table 3: a paired WKD step in float32 vs bf16 autocast (as ``accelerator.prepare`` wraps
    models, outputs back to float32, so the losses and the DWT stay float32), channels_last and
    batch size; per-round ratios to ``fp32``. Quality: each configuration's first step starts
    from the same weights and batch, so its losses compare with fp32's."""
    q, res = args.quick, args.resolution
    nets = {"teacher_ngf": 8 if q else 64, "student_ngf": args.student_ngf,
            "n_blocks": 2 if q else 9, "ndf": 8 if q else 32, "resolution": res}
    torch.manual_seed(0)
    teacher0 = generator(nets["teacher_ngf"], nets["n_blocks"])
    student0 = generator(args.student_ngf, nets["n_blocks"])
    disc0 = PatchDiscriminator(in_channels=6, ndf=nets["ndf"], n_layers=3, norm_type="batch")
    images = {k: torch.rand(4 * args.batch_size, 3, res, res) * 2 - 1 for k in ("source", "target")}
    config = WKDConfig(mode="paired", bands="high", wave="haar", levels=4, distance="l1")
    steps, records, sizes = {}, {}, {}
    for name, (mixed, teacher_mixed, channels_last, times) in PRECISIONS.items():
        if (name.endswith("_cl") and not args.channels_last) or (
                name.endswith("_compile") and not args.compile):
            continue
        student, disc, teacher = (copy.deepcopy(m) for m in (student0, disc0, teacher0))
        sizes[name] = args.batch_size * times
        batch = {k: v[:sizes[name]].clone() for k, v in images.items()}
        if channels_last:
            for module in (student, disc, teacher):
                module.to(memory_format=torch.channels_last)
            batch = {k: v.contiguous(memory_format=torch.channels_last) for k, v in batch.items()}
        autocast_like_prepared(student, BF16 if mixed else None)
        autocast_like_prepared(disc, BF16 if mixed else None)
        autocast_like_prepared(teacher, BF16 if teacher_mixed else None)
        records[name] = []
        if name.endswith("_compile"):  # inductor, static shapes; compiled at the first (warm-up) step
            student, disc, teacher = (torch.compile(m, dynamic=False)
                                      for m in (student, disc, teacher))
        distiller = PairedDistiller(student, disc, config, teacher)
        steps[name] = make_step(distiller, [student], [disc], batch, records[name])
    times = {name: [ms / 1000 for ms in values]
             for name, values in interleaved(steps, args.repeats, args.warmup, args.clock).items()}
    first = {name: record[0] for name, record in records.items()}
    rows = {name: {**quantiles(t), "times": t, "batch_size": sizes[name],
                   "vs_fp32": ratio(times, name, "fp32"),
                   "per_image_vs_fp32": quantiles([a / sizes[name] / b * sizes["fp32"] for a, b
                                                   in zip(t, times["fp32"])]),
                   "first_step_losses": first[name],
                   "first_step_rel_diff": {k: abs(v - first["fp32"][k]) / abs(first["fp32"][k])
                                           for k, v in first[name].items()
                                           if sizes[name] == sizes["fp32"]}}
            for name, t in times.items()}
    return {"nets": nets, "cpu_bf16": cpu_bf16_support(), "configs": rows}


def print_precision(result: dict, args) -> None:
    """Table 3: precision, memory format and batch size of a paired WKD step."""
    n = result["nets"]
    print(f"\n== Table 3: paired WKD step (haar/4/l1), {n['resolution']} px; teacher ngf "
          f"{n['teacher_ngf']}, student ngf {n['student_ngf']}, D ndf {n['ndf']}; CPU bf16: "
          f"{result['cpu_bf16']} ==")
    print(f"{'configuration':<15}{'batch':>6}{'ms median [p10, p90]':>26}{'x fp32':>22}"
          f"{'per image x fp32':>22}{'wkd rel. diff':>15}")
    for name, row in result["configs"].items():
        diff = row["first_step_rel_diff"].get("wkd")
        print(f"{name:<15}{row['batch_size']:>6}{fmt(row, 1e3):>26}{fmt(row['vs_fp32'], 1, 3):>22}"
              f"{fmt(row['per_image_vs_fp32'], 1, 3):>22}"
              f"{'-' if diff is None else f'{diff:.2e}':>15}")
    print("x fp32: time / fp32's time in the same round (< 1: faster). bf16: student, D and "
          "teacher forwards under torch.autocast(cpu, bfloat16) with float32 outputs, as "
          "accelerate prepares models; losses and DWT in float32. bf16_students: the teacher in float32 "
          "(before this change). wkd rel. diff: |WKD loss - fp32's| / fp32's at the first step "
          "(same weights, same batch).")


def fmt(stats: dict, scale: float = 1.0, digits: int = 1) -> str:
    """``median [p10, p90]`` of a :func:`quantiles` dict, times ``scale``."""
    m, lo, hi = (stats[k] * scale for k in ("median", "p10", "p90"))
    return f"{m:.{digits}f} [{lo:.{digits}f}, {hi:.{digits}f}]"


def print_wkd(result: dict, args) -> None:
    """Table 1 and the WKD-share lines."""
    n = result["nets"]
    print(f"\n== Table 1: cost of the WKD term in a pix2pix step: {n['resolution']} px, batch "
          f"{args.batch_size}; teacher ngf {n['teacher_ngf']}, student ngf {n['student_ngf']} "
          f"({n['n_blocks']} blocks, instance); D ndf {n['ndf']} conditional ==")
    print(f"{'configuration':<15}{'ms median [p10, p90]':>26}{'x no_kd':>22}{'x output_kd':>22}")
    for name, row in result["configs"].items():
        print(f"{name:<15}{fmt(row, 1e3):>26}{fmt(row['vs_no_kd'], 1, 3):>22}"
              f"{fmt(row['vs_output_kd'], 1, 3):>22}")
    share = result["share"]
    print("no_kd skips the teacher forward (as the distiller does); wkd_high and output_kd run it.\n"
          "*_loss_only: forward + backward of the KD loss alone on generator-sized outputs.")
    print(f"WKD loss alone / wkd_high step:               "
          f"{fmt(share['wkd_loss_over_wkd_step'], 100, 2)} %")
    print(f"(wkd_high - output_kd) / wkd_high, per round: "
          f"{fmt(share['wkd_minus_output_kd_over_wkd_step'], 100, 2)} %")
    met = share["wkd_loss_over_wkd_step"]["median"] <= 0.05
    print(f"Criterion 'WKD term <= 5% of a step' (isolated loss, median): {'MET' if met else 'NOT MET'}")


def print_cycle(result: dict, args) -> None:
    """Table 2 and the quoted (not measured) reference figures."""
    n = result["nets"]
    print(f"\n== Table 2: one CycleGAN-style iteration (both directions, D + G updates), batch "
          f"{args.batch_size} ==")
    authors = "authors_code" in result["configs"]
    print(f"{'configuration':<16}{'px':>5}{'s median [p10, p90]':>26}{'x paper_mode':>22}"
          + (f"{'x authors_code':>22}" if authors else ""))
    for name, row in result["configs"].items():
        print(f"{name:<16}{row['resolution']:>5}{fmt(row, 1, 3):>26}"
              f"{fmt(row['vs_paper_mode'], 1, 3):>22}"
              + (f"{fmt(row['vs_authors_code'], 1, 3):>22}" if authors else ""))
    print(f"paper_mode: 2 students ngf {n['student_ngf']} + 2 frozen teachers ngf {n['teacher_ngf']} "
          f"({n['n_blocks']} blocks, instance), 2 D ndf {n['ndf_paper']} (instance), WKD haar/4 "
          f"levels/0.4, l2 (the released code's MSE).\nours_default: same with D ndf "
          f"{n['ndf_ours']} and l1. teacher_*: plain CycleGAN (no KD), 2 G ngf {n['teacher_ngf']}, "
          f"2 D ndf {n['ndf_paper']}. paper_mode_bf16: paper_mode under bf16 autocast, teachers "
          f"too (--mixed_precision bf16), losses float32."
          + (" authors_code: the authors' released optimize_parameters() (benchmarks/"
             "authors_code.py), same networks and settings." if authors else ""))
    low, high = REFERENCE["authors_paper_mode_s"]
    tlow, thigh = REFERENCE["upstream_cyclegan_teacher_s"]
    print(f"Reported for the authors' code, NOT measured here: paper-mode iteration {low}-{high} s "
          f"(median); upstream CycleGAN teacher training (ngf 64) {tlow}-{thigh} s (crop size not "
          f"stated).")


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=None, help="timed rounds (default 15; quick 2)")
    parser.add_argument("--warmup", type=int, default=None, help="untimed rounds (default 2; quick 1)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default 2; quick 1: two threads on a shared 2-core "
                             "machine slow tiny nets down 5-10x)")
    parser.add_argument("--resolution", type=int, default=None, help="crop size (default 128; quick 32)")
    parser.add_argument("--teacher_resolution", type=int, nargs="+", default=None,
                        help="crop size(s) of the plain CycleGAN teacher step (default: --resolution)")
    parser.add_argument("--student_ngf", type=int, default=None, help="Table 1 student (default 24)")
    parser.add_argument("--batch_size", type=int, default=1)
    parser.add_argument("--only", choices=("wkd", "cycle", "precision"), default=None)
    parser.add_argument("--cpu_time", action="store_true",
                        help="time this process's CPU seconds instead of the wall clock: on a "
                             "machine loaded by other jobs, the work of a step, not the waiting "
                             "for a core (with --threads 1; threads' time adds up otherwise)")
    parser.add_argument("--no_teacher_step", action="store_true",
                        help="Table 2: leave out the plain CycleGAN teacher step(s)")
    parser.add_argument("--authors_code", default=None,
                        help="Table 2: also time the authors' released step from this checkout "
                             "of ArchipLab-LinfengZhang/wkd-datasets (see authors_code.py)")
    parser.add_argument("--compile", action="store_true",
                        help="Table 3: also time bf16 with torch.compile'd networks (minutes of "
                             "compile in the warm-up)")
    parser.add_argument("--channels_last", action="store_true",
                        help="Table 3: also time channels_last (fp32_cl, bf16_cl)")
    parser.add_argument("--quick", action="store_true",
                        help="tiny nets, 32 px, 2 repeats, 1 thread (smoke test; numbers mean nothing)")
    parser.add_argument("--json", default=None, help="write all timings here")
    args = parser.parse_args(argv)
    q = args.quick
    args.repeats = args.repeats or (2 if q else 15)
    args.threads = args.threads or (1 if q else 2)
    args.warmup = (1 if q else 2) if args.warmup is None else args.warmup
    args.resolution = args.resolution or (32 if q else 128)
    args.teacher_resolution = args.teacher_resolution or [args.resolution]
    args.student_ngf = args.student_ngf or (4 if q else 24)
    args.clock = time.process_time if args.cpu_time else None
    return args


def load_average() -> float | None:
    """1-minute load average (other jobs on the cores), or None where the OS has none."""
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def main(argv=None) -> dict:
    """Run the selected tables, print them, write ``--json``; returns the result dict."""
    args = parse_args(argv)
    previous_threads = torch.get_num_threads()
    torch.set_num_threads(args.threads)
    info = machine_info(args.threads)
    result = {"machine": info, "settings": vars(args), "reference_not_measured": REFERENCE,
              "load_average": {"start": load_average()}}
    print(f"Machine: {info['cpu']}, {info['cores']} cores; torch {info['torch']}, python "
          f"{info['python']}, {args.threads} threads. {args.repeats} interleaved rounds after "
          f"{args.warmup} warm-up{' (QUICK: tiny nets)' if args.quick else ''}"
          f"{'; CPU time of this process, not wall clock' if args.cpu_time else ''}. 1-min load "
          f"average before: {result['load_average']['start']}.")
    try:
        tables = (("wkd", bench_wkd, print_wkd), ("cycle", bench_cycle, print_cycle),
                  ("precision", bench_precision, print_precision))
        for table, bench, show in tables:
            if args.only in (None, table):
                result[table] = bench(args)
                result["load_average"][f"after_{table}"] = load_average()
                show(result[table], args)
    finally:
        torch.set_num_threads(previous_threads)
    print(f"1-min load average after each table (includes this run): "
          f"{ {k: v for k, v in result['load_average'].items() if k != 'start'} }. Other jobs on "
          f"the cores inflate multi-thread timings many-fold: trust a run started at load < 0.5.")
    if args.json:
        result["settings"].pop("clock", None)
        with open(args.json, "w") as handle:
            json.dump(result, handle, indent=1)
    return result


if __name__ == "__main__":
    main()
