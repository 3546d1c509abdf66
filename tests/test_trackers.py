"""Validation grids reach every configured tracker through accelerate's tracker API."""

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.tracking import GeneralTracker

from wkd_hf.grid_labels import LABEL_HEIGHT
from wkd_hf.recipes import log_previews


class RecordingTracker(GeneralTracker):
    name = "recording"
    requires_logging_directory = False

    def __init__(self):
        super().__init__()
        self.images = []

    @property
    def tracker(self):
        return self

    def store_init_configuration(self, values):
        pass

    def log(self, values, step=None, **kwargs):
        pass

    def log_images(self, values, step=None, **kwargs):
        self.images.append((values, step))


def test_grids_reach_a_non_tensorboard_tracker_and_tensorboard(tmp_path):
    recorder = RecordingTracker()
    accelerator = Accelerator(cpu=True, log_with=[recorder, "tensorboard"],
                              project_dir=str(tmp_path))
    accelerator.init_trackers("run")
    previews = {"samples": {"input": torch.zeros(2, 3, 8, 8), "output": torch.ones(2, 3, 8, 8)}}
    log_previews(accelerator, previews, step=7)
    ((values, step),) = recorder.images
    assert step == 7 and list(values) == ["validation/samples"]
    (grid,) = values["validation/samples"]
    assert isinstance(grid, np.ndarray) and grid.shape == (2 * 8 + 2 + LABEL_HEIGHT, 2 * 8 + 2, 3)
    accelerator.end_training()
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    (run_dir,) = {e.parent for e in tmp_path.rglob("events.out.tfevents.*")}
    events = EventAccumulator(str(run_dir)).Reload()
    assert events.Tags()["images"] == ["validation/samples"]
    assert events.Images("validation/samples")[0].step == 7
