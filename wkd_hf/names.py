"""On-disk names and shared constants, each defined once (the base layer: imports nothing).

A run's output folder holds ``args.json`` (the run record), ``wkd_config.json`` (the method),
``README.md`` (the card) and the models: one at the root, or a CycleGAN pair in
``generator_a2b/`` and ``generator_b2a/`` with ``discriminator_b/`` and ``discriminator_a/``.
"""

ARGS_FILE = "args.json"  # the run record (no secrets): written by every run and checkpoint
STATE_FILE = "training_state.json"  # the loop's counters in a checkpoint folder
WKD_CONFIG_NAME = "wkd_config.json"  # the method settings beside a student
CARD_FILE = "README.md"

# CycleGAN output folders: direction -> generator subfolder / the discriminator trained with it
CYCLE_SUBFOLDERS = {"a2b": "generator_a2b", "b2a": "generator_b2a"}
CYCLE_DISCRIMINATORS = {"a2b": "discriminator_b", "b2a": "discriminator_a"}

# upstream (pytorch-CycleGAN-and-pix2pix) checkpoint files that the converter reads
CHECKPOINT_SUFFIXES = (".pth", ".pt", ".bin", ".ckpt", ".safetensors")

# --lr_scheduler: pix2pix's constant-then-linear decay, or one of diffusers' get_scheduler names
PIX2PIX_SCHEDULER = "pix2pix_linear"
DIFFUSERS_SCHEDULERS = ("constant", "constant_with_warmup", "linear", "cosine",
                        "cosine_with_restarts", "polynomial")
LR_SCHEDULERS = (PIX2PIX_SCHEDULER, *DIFFUSERS_SCHEDULERS)
