#!/usr/bin/env python
"""Distil a pix2pix / CycleGAN teacher into a small student with Wavelet Knowledge Distillation.

    accelerate launch training_scripts/distill.py \
        --teacher_model_name_or_path path/or/hub-id --train_data_dir path/to/facades/train \
        --direction BtoA --student_ngf 24 --discriminator_ndf 32 --output_dir facades-student

Modes: ``paired`` (pix2pix data), ``teacher_target`` (unpaired data, the teacher's output is the
target: GAN Compression's recipe) and ``cycle`` (unpaired data, two students and the full CycleGAN
objective plus WKD on each direction: the paper's recipe). See README.md for every flag.
"""

from __future__ import annotations

import argparse
import sys

from accelerate.logging import get_logger

from wkd_hf.budget import parse_macs, pick_student
from wkd_hf.distillation import (
    CycleDistiller,
    PairedDistiller,
    WKDConfig,
    build_feature_kd,
    default_gan_mode,
)
from wkd_hf.models.building import build_discriminator, build_student
from wkd_hf.recipes import (
    check_resolution_fits,
    check_teacher_direction,
    check_teacher_fits_data,
    discriminator_init_paths,
    load_teachers,
    warn_if_student_not_smaller,
)
from wkd_hf.run import GANRun, add_common_args, prepare_run, run_cli
from wkd_hf.script_args import ScriptArgumentParser, add_cycle_objective_args

logger = get_logger(__name__)


def parse_args(input_args: list[str] | None = None) -> argparse.Namespace:
    parser = ScriptArgumentParser(description=__doc__.split("\n")[1])
    model = parser.add_argument_group("teacher and student")
    model.add_argument("--teacher_model_name_or_path", required=True,
                       help="Hub id, save_pretrained folder, or pytorch-CycleGAN-and-pix2pix .pth "
                            "(required).")
    model.add_argument("--teacher_subfolder", default=None,
                       help="Folder inside --teacher_model_name_or_path holding the teacher "
                            "(default: its root; not in cycle mode).")
    model.add_argument("--teacher_hub_id", default=None,
                       help="Hub id of the teacher when --teacher_model_name_or_path is a local "
                            "copy of it; the model card names it as base_model (default: none).")
    model.add_argument("--student_ngf", type=int, default=None,
                       help="Student width (default 24; ngf 64 -> 24: the paper's 7.08x fewer "
                            "parameters). Not with --student_macs_budget / --student_speedup.")
    model.add_argument("--student_macs_budget", default=None,
                       help="Pick the widest student whose MACs per image at --resolution fit, "
                            "e.g. 3.5G or 800M (default: none, --student_ngf sets the width).")
    model.add_argument("--student_speedup", type=float, default=None,
                       help="Pick the widest student with at least this many times fewer MACs "
                            "than the teacher at --resolution, e.g. 10 (default: none).")
    model.add_argument("--student_block_type", choices=("resnet", "mobile", "auto"), default=None,
                       help="ResNet students: plain or depthwise-separable blocks (default "
                            "resnet); 'auto' (with a budget) sizes both and keeps the one whose "
                            "MACs come closest to the budget.")
    model.add_argument("--student_n_blocks", type=int, default=None,
                       help="ResNet students: residual blocks (default: the teacher's).")
    model.add_argument("--discriminator_ndf", type=int, default=32,
                       help="Shrunk discriminator width (the teacher's is 64; 32 is ~4x smaller).")
    model.add_argument("--discriminator_n_layers", type=int, default=3,
                       help="Strided conv layers of the PatchGAN discriminator (3: the 70x70 "
                            "PatchGAN of pix2pix and CycleGAN).")
    model.add_argument("--teacher_discriminator_path", default=None,
                       help="Initialise the student discriminator from this one (shapes must "
                            "match). Cycle mode: a CycleGAN teacher folder; D_A starts from its "
                            "discriminator_a/, D_B from discriminator_b/. Default: random init.")
    method = parser.add_argument_group("method (saved as wkd_config.json)")
    method.add_argument("--mode", choices=("paired", "teacher_target", "cycle"), default="paired",
                        help="paired: pix2pix data; teacher_target: unpaired data, the teacher's "
                             "output is the target (GAN Compression); cycle: unpaired data, two "
                             "students, CycleGAN objective + WKD (the paper).")
    method.add_argument("--wkd_wave", default="haar",
                        help="PyWavelets wavelet of the DWT (the authors' runs: haar).")
    method.add_argument("--wkd_levels", type=int, default=4,
                        help="DWT levels (the authors' runs: 4).")
    method.add_argument("--wkd_bands", choices=("high", "low", "all", "none"), default="high",
                        help="DWT bands the WKD term compares: high (LH/HL/HH, the method), low, "
                             "all, or none (no WKD: the no-KD baseline).")
    method.add_argument("--wkd_distance", choices=("l1", "l2"), default="l1",
                        help="WKD distance: l1 (the paper) or l2 (the authors' CycleGAN code).")
    method.add_argument("--lambda_wkd", type=float, default=0.4,
                        help="Weight of the WKD term (the authors' runs: 0.4).")
    method.add_argument("--lambda_recon", type=float, default=100.0,
                        help="Weight of L1(student, target) (pix2pix's L1 weight); unused in "
                             "cycle mode.")
    method.add_argument("--kd_output_weight", type=float, default=0.0,
                        help="Weight of output KD, L1(student, teacher): a baseline (0: off).")
    method.add_argument("--kd_feature_weight", type=float, default=0.0,
                        help="Weight of feature KD through 1x1 adapters: a baseline (0: off).")
    method.add_argument("--kd_feature_layers", nargs="*", default=None,
                        help="Generator feature names for feature KD (default: the generator's "
                             "own choice).")
    add_cycle_objective_args(method)
    add_common_args(parser)
    args = parser.parse_args(input_args)
    args.gan_mode = args.gan_mode or default_gan_mode(args.mode)
    budgeted = args.student_macs_budget is not None or args.student_speedup is not None
    if args.student_macs_budget is not None and args.student_speedup is not None:
        parser.error("pass one of --student_macs_budget and --student_speedup, not both.")
    if budgeted and args.student_ngf is not None:
        parser.error("--student_ngf fixes the width; drop it to size the student with "
                     "--student_macs_budget / --student_speedup.")
    if args.student_block_type == "auto" and not budgeted:
        parser.error("--student_block_type auto needs --student_macs_budget or --student_speedup.")
    if args.student_macs_budget is not None:
        try:
            parse_macs(args.student_macs_budget)
        except ValueError as error:
            parser.error(f"--student_macs_budget: {error}")
    if args.student_speedup is not None and not args.student_speedup > 1:
        parser.error(f"--student_speedup must be > 1, got {args.student_speedup}.")
    if not budgeted and args.student_ngf is None:
        args.student_ngf = 24
    if (args.student_ngf is not None and args.student_ngf <= 0) or args.discriminator_ndf <= 0:
        parser.error("--student_ngf and --discriminator_ndf must be > 0.")
    if args.student_n_blocks is not None and args.student_n_blocks < 1:
        parser.error(f"--student_n_blocks must be >= 1, got {args.student_n_blocks}.")
    return args


def method_config(args: argparse.Namespace) -> WKDConfig:
    return WKDConfig(
        mode=args.mode, wave=args.wkd_wave, levels=args.wkd_levels, bands=args.wkd_bands,
        distance=args.wkd_distance, lambda_wkd=args.lambda_wkd, lambda_recon=args.lambda_recon,
        lambda_gan=args.lambda_gan, gan_mode=args.gan_mode,
        kd_output_weight=args.kd_output_weight, kd_feature_weight=args.kd_feature_weight,
        kd_feature_layers=tuple(args.kd_feature_layers or ()), lambda_cycle=args.lambda_cycle,
        lambda_identity=args.lambda_identity, pool_size=args.pool_size,
        conditional_discriminator=args.mode == "paired")


def build_models(args: argparse.Namespace, config: WKDConfig) -> GANRun:
    """Teachers (frozen), students and shrunk discriminators, keyed by direction."""
    check_teacher_direction(args)
    teachers = load_teachers(args.teacher_model_name_or_path, args.mode, args.direction,
                             args.teacher_subfolder)
    for teacher in teachers.values():
        check_teacher_fits_data(teacher)
    if args.student_macs_budget is not None or args.student_speedup is not None:
        choice = pick_student(teachers["a2b"], macs_budget=args.student_macs_budget,
                              speedup=args.student_speedup, resolution=args.resolution,
                              block_type=args.student_block_type, n_blocks=args.student_n_blocks)
        logger.info(f"Budget: {choice.summary()}", main_process_only=True)
        # args.json (and so the card's run record) keeps the budget and what it picked
        args.student_ngf, args.student_block_type = choice.ngf, choice.block_type
        args.student_budget_result = choice.to_dict()
    students = {key: build_student(t, args.student_ngf, args.student_block_type,
                                   args.student_n_blocks) for key, t in teachers.items()}
    warn_if_student_not_smaller(teachers["a2b"], students["a2b"], args.teacher_model_name_or_path)
    for key, teacher in teachers.items():  # before any step: a bad size fails inside the loss
        check_resolution_fits(teacher, args.resolution, "teacher")
        check_resolution_fits(students[key], args.resolution, "student")
    channels = 3 * (2 if config.conditional_discriminator else 1)
    norm = "instance" if args.mode != "paired" else "batch"
    init = discriminator_init_paths(args.teacher_discriminator_path, list(teachers), args.mode)
    discriminators = {key: build_discriminator(channels, args.discriminator_ndf,
                                               args.discriminator_n_layers, norm, init[key])
                      for key in teachers}
    feature_kd = {key: kd for key in teachers
                  if (kd := build_feature_kd(students[key], teachers[key], config)) is not None}
    return GANRun(config=config, generators=students, discriminators=discriminators,
                  teachers=teachers, adapters=feature_kd)


def build_distiller(run: GANRun):
    if run.config.mode == "cycle":
        return CycleDistiller(run.generators, run.discriminators, run.config, run.teachers,
                              run.adapters)
    return PairedDistiller(run.generators["a2b"], run.discriminators["a2b"], run.config,
                           run.teachers["a2b"], run.adapters.get("a2b"))


def main(args: argparse.Namespace, argv: list[str] | None = None) -> None:
    config = method_config(args)
    session = prepare_run(args, script="distill.py", argv=argv)    # checks, accelerator, args.json
    run = build_models(args, config)
    data = session.build_data(config.mode)
    session.train(run, build_distiller, data)                       # resumable, checkpointed loop
    session.export(run, data, teacher_name=args.teacher_model_name_or_path)


if __name__ == "__main__":
    sys.exit(run_cli(main, parse_args))
