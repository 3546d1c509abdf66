"""The study's efficiency part: params, MACs and CPU latency of the studied networks, timed in
interleaved rounds in one process (median [p10, p90]; batch 1). Each round's times are kept, so
the report's speed-ups are per-round ratios (``study_report.latency_lines``)."""

from __future__ import annotations

from pathlib import Path

import torch

from wkd_hf.metrics.efficiency import count_macs, count_parameters, interleaved, quantiles
from wkd_hf.models.building import load_generator


def measure(nets: dict[str, tuple[Path, int]], rounds: int) -> dict:
    """``nets``: name -> (folder or checkpoint, input size); returns the part's record. A network
    not trained yet (no folder) is listed under ``"missing"``, not timed."""
    missing = sorted(name for name, (path, _) in nets.items() if not Path(path).exists())
    models = {name: (load_generator(str(path)).eval(), torch.randn(1, 3, size, size))
              for name, (path, size) in nets.items() if name not in missing}
    with torch.inference_mode():
        times = interleaved({name: (lambda m=m, x=x: m(x)) for name, (m, x) in models.items()},
                            repeats=rounds, warmup=3)
    rows = {}
    for name, (model, x) in models.items():
        q = quantiles(times[name])
        rows[name] = {"resolution": x.shape[-1], "params": count_parameters(model),
                      "macs": count_macs(model, x.shape[-1]), "latency_ms_median": q["median"],
                      "latency_ms_p10": q["p10"], "latency_ms_p90": q["p90"],
                      "latency_ms_rounds": [round(t, 4) for t in times[name]]}
    return {"models": rows, "missing": missing, "threads": torch.get_num_threads(),
            "rounds": rounds, "batch_size": 1}
