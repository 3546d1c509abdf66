#!/usr/bin/env python
"""Train a pix2pix teacher (paired data) or a CycleGAN teacher pair (unpaired data).

    accelerate launch training_scripts/train_teacher.py --mode paired \
        --train_data_dir path/to/facades/train --direction BtoA --output_dir facades-teacher

The output folder is what ``distill.py --teacher_model_name_or_path`` takes: a pix2pix teacher
at its root (discriminator in ``discriminator/``); a CycleGAN teacher as ``generator_a2b/``,
``generator_b2a/``, ``discriminator_a/`` and ``discriminator_b/``.
"""

from __future__ import annotations

import argparse
import sys

from wkd_hf.distillation import CycleDistiller, PairedDistiller, WKDConfig, default_gan_mode
from wkd_hf.models import ResnetGenerator, UnetGenerator
from wkd_hf.models.building import build_discriminator
from wkd_hf.recipes import check_resolution_fits
from wkd_hf.run import GANRun, add_common_args, prepare_run, run_cli
from wkd_hf.script_args import ScriptArgumentParser, add_cycle_objective_args


def parse_args(input_args: list[str] | None = None) -> argparse.Namespace:
    parser = ScriptArgumentParser(description=__doc__.split("\n")[1])
    model = parser.add_argument_group("networks (saved in each config.json)")
    model.add_argument("--mode", choices=("paired", "cycle"), default="paired",
                       help="paired: a pix2pix teacher on paired data; cycle: a CycleGAN pair "
                            "on unpaired data.")
    model.add_argument("--generator", choices=("resnet", "unet"), default="resnet",
                       help="resnet: CycleGAN's resnet_<n>blocks; unet: pix2pix's unet_256.")
    model.add_argument("--ngf", type=int, default=64,
                       help="Generator width: filters of the first conv (pix2pix and CycleGAN: "
                            "64).")
    model.add_argument("--n_blocks", type=int, default=9, help="ResNet residual blocks.")
    model.add_argument("--block_type", choices=("resnet", "mobile"), default="resnet",
                       help="ResNet blocks: plain or depthwise-separable (mobile).")
    model.add_argument("--num_downs", type=int, default=8, help="U-Net depth (8 for 256 px).")
    model.add_argument("--norm_type", choices=("instance", "batch", "none"), default=None,
                       help="Default: batch for paired (pix2pix), instance for cycle (CycleGAN).")
    model.add_argument("--use_dropout", action="store_true",
                       help="Dropout in the generator (pix2pix's unet_256 uses it).")
    model.add_argument("--ndf", "--discriminator_ndf", dest="ndf", type=int, default=64,
                       help="PatchGAN discriminator width (pix2pix and CycleGAN: 64).")
    model.add_argument("--discriminator_n_layers", type=int, default=3,
                       help="Strided conv layers of the PatchGAN discriminator (3: the 70x70 "
                            "PatchGAN of pix2pix and CycleGAN).")
    model.add_argument("--n_layers_D", dest="discriminator_n_layers", type=int,
                       default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # the older name
    objective = parser.add_argument_group("objective")
    objective.add_argument("--lambda_recon", type=float, default=100.0,
                           help="Paired mode: pix2pix's L1 weight.")
    add_cycle_objective_args(objective)
    add_common_args(parser)
    args = parser.parse_args(input_args)
    args.norm_type = args.norm_type or ("batch" if args.mode == "paired" else "instance")
    args.gan_mode = args.gan_mode or default_gan_mode(args.mode)
    return args


def build_generator(args: argparse.Namespace):
    if args.generator == "unet":
        return UnetGenerator(ngf=args.ngf, num_downs=args.num_downs, norm_type=args.norm_type,
                             use_dropout=args.use_dropout)
    return ResnetGenerator(ngf=args.ngf, n_blocks=args.n_blocks, block_type=args.block_type,
                           norm_type=args.norm_type, use_dropout=args.use_dropout)


def build_models(args: argparse.Namespace) -> GANRun:
    """The objective (no teacher terms) and fresh generators/discriminators per direction."""
    config = WKDConfig(mode=args.mode, bands="none", lambda_recon=args.lambda_recon,
                       lambda_gan=args.lambda_gan, gan_mode=args.gan_mode,
                       lambda_cycle=args.lambda_cycle, lambda_identity=args.lambda_identity,
                       pool_size=args.pool_size, conditional_discriminator=args.mode == "paired")
    keys = ("a2b", "b2a") if args.mode == "cycle" else ("a2b",)
    d_channels = 6 if args.mode == "paired" else 3
    generators = {k: build_generator(args) for k in keys}
    for generator in generators.values():  # before any step: a bad size fails inside the loss
        check_resolution_fits(generator, args.resolution)
    discriminators = {k: build_discriminator(d_channels, args.ndf, args.discriminator_n_layers,
                                             args.norm_type) for k in keys}
    return GANRun(config=config, generators=generators, discriminators=discriminators)


def build_trainer(run: GANRun):
    if run.is_cycle:
        return CycleDistiller(run.generators, run.discriminators, run.config)
    return PairedDistiller(run.generators["a2b"], run.discriminators["a2b"], run.config)


def main(args: argparse.Namespace, argv: list[str] | None = None) -> None:
    session = prepare_run(args, script="train_teacher.py", argv=argv)
    run = build_models(args)
    data = session.build_data(args.mode)
    session.train(run, build_trainer, data)
    session.export(run, data, teacher_name=None, save_method_config=False)


if __name__ == "__main__":
    sys.exit(run_cli(main, parse_args))
