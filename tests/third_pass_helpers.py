"""Helpers of the third reliability pass's tests: a pickle that runs code, tiny generators and
photos, a one-step distillation run."""

import os

import torch


class Payload:
    """A pickle that runs code when loaded: it creates ``marker``."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def evil_pickle(path, marker):
    torch.save({"Conv2d_1a_3x3.conv.weight": Payload(marker)}, path)
    return path


def write_results(folder):
    from wkd_hf.hub import write_evaluation_results

    record = {"name": "m", "metrics": {"psnr": 20.0}}
    return write_evaluation_results(folder, record, dataset_name="d", dataset_type="d",
                                    dataset_split="test", task_name="t", table="| a |")


def tiny_generator(seed=0):
    from wkd_hf.models import ResnetGenerator

    torch.manual_seed(seed)
    return ResnetGenerator(ngf=4, n_blocks=1).eval()


def photo(width=16, height=12, seed=0):
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def distill_argv(teacher, data, out, *extra):
    return ["--teacher_model_name_or_path", str(teacher), "--train_data_dir", str(data),
            "--direction", "BtoA", "--output_dir", str(out), "--resolution", "32",
            "--train_batch_size", "2", "--validation_split", "2", "--num_validation_images", "2",
            "--validation_steps", "0", "--report_to", "none", "--student_ngf", "4",
            "--discriminator_ndf", "4", "--wkd_levels", "3", "--seed", "3",
            "--max_train_steps", "1", "--checkpointing_steps", "0", *extra]


def distill(*argv):
    from conftest import run_script
    from wkd_hf.processes import release_output_dirs

    try:
        return run_script("distill", list(argv))
    finally:
        release_output_dirs()


def snapshot(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*")
            if p.is_file() and p.name != ".wkd_hf.lock"}


def tiny_pipe():
    from wkd_hf.pipeline import ImageTranslationPipeline

    pipe = ImageTranslationPipeline(tiny_generator())
    pipe.set_progress_bar_config(disable=True)
    return pipe
