"""``wkd-convert``: a pytorch-CycleGAN-and-pix2pix / GAN Compression checkpoint into a
``save_pretrained`` folder."""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from ..conversion import convert_pix2pix_checkpoint, describe
from . import PLAIN_ERRORS, guarded

logger = logging.getLogger("wkd_hf.conversion")
PROG = "wkd-convert"


def main(argv: Sequence[str] | None = None) -> int:
    """``wkd-convert --checkpoint PATH --output_dir DIR``: convert and save; without
    ``--output_dir`` only report the inferred architecture."""
    description = "Convert a pix2pix / CycleGAN / GAN Compression checkpoint to a wkd_hf folder."
    parser = argparse.ArgumentParser(prog=PROG, description=description,
                                     allow_abbrev=False,
                                     epilog="Recipes: see README.md, section 'Recipes'.")
    parser.add_argument("--checkpoint", required=True,
                        help="A .pth/.safetensors file, a folder or a Hub repo id (required).")
    parser.add_argument("--output_dir",
                        help="save_pretrained folder to write (default: none, only report the "
                             "architecture).")
    dropout_help = ("force use_dropout (U-Net checkpoints do not record it; default: true for "
                    "batch norm, as pix2pix trains, false otherwise, as CycleGAN)")
    parser.add_argument("--use_dropout", choices=("true", "false"), help=dropout_help)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    overrides = {} if args.use_dropout is None else {"use_dropout": args.use_dropout == "true"}
    return guarded(PROG, lambda: _convert(args, overrides), plain=PLAIN_ERRORS)


def _convert(args: argparse.Namespace, overrides: dict) -> int:
    model = convert_pix2pix_checkpoint(args.checkpoint, args.output_dir, overrides=overrides)
    logger.info("Inferred %s", describe(model))
    if args.output_dir is not None:
        logger.info("Saved to %s (load with wkd_hf.load_pretrained_model)", args.output_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
