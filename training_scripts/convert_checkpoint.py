#!/usr/bin/env python
"""Convert a pytorch-CycleGAN-and-pix2pix / GAN Compression checkpoint into a wkd_hf model folder.

    python training_scripts/convert_checkpoint.py \
        --checkpoint checkpoints/horse2zebra/latest_net_G_A.pth --output_dir horse2zebra-teacher

Same as the ``wkd-convert`` command: it infers the architecture from the weights, logs it with the
parameter count, and writes ``config.json`` + ``diffusion_pytorch_model.safetensors``, which
``wkd_hf.load_pretrained_model`` and ``distill.py --teacher_model_name_or_path`` read.
Pickles that carry code are refused; see ``wkd_hf.conversion`` for what is supported.
"""

import sys

from wkd_hf.cli.convert import main

if __name__ == "__main__":
    sys.exit(main())
