"""A run shorter than --validation_steps still logs its final validation (metrics and the picture
grid) to the trackers, as the card shows final validation figures."""

import pytest
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from conftest import TINY_RUN, run_script


def _logged(out) -> tuple[dict, dict]:
    """tag -> steps of the scalars and of the images in every event file under ``out/logs``."""
    scalars, images = {}, {}
    for run_dir in {e.parent for e in (out / "logs").rglob("events.out.tfevents.*")}:
        events = EventAccumulator(str(run_dir)).Reload()
        for tag in events.Tags()["scalars"]:
            scalars.setdefault(tag, []).extend(e.step for e in events.Scalars(tag))
        for tag in events.Tags()["images"]:
            images.setdefault(tag, []).extend(e.step for e in events.Images(tag))
    return scalars, images


@pytest.mark.parametrize("every, steps", [("50", [2]), ("1", [1, 2])])
def test_final_validation_reaches_tensorboard_once(tmp_path, photo_pairs, every, steps):
    out = tmp_path / "teacher"
    flags = [*TINY_RUN, "--report_to", "tensorboard", "--validation_steps", every]
    run_script("train_teacher", ["--train_data_dir", str(photo_pairs), "--direction", "BtoA",
                                 "--output_dir", str(out), "--ngf", "4", "--n_blocks", "1",
                                 "--ndf", "4", *flags])
    scalars, images = _logged(out)
    assert sorted(scalars.get("validation/psnr", [])) == steps  # the last step, once
    assert sorted(images.get("validation/samples", [])) == steps
    assert (out / "validation" / "step-2.png").is_file()
