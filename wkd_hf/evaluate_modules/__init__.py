"""``evaluate`` modules of wkd_hf, loadable offline by path::

    import evaluate
    from wkd_hf.evaluate_modules import module_path

    bands = evaluate.load(module_path("band_fidelity"))
    fid = evaluate.load(module_path("fid_kid"))

Their inputs are features or scalars (``evaluate`` buffers inputs through Arrow): compute them
batched in torch with :class:`wkd_hf.metrics.bands.BandFidelity` and
:class:`wkd_hf.metrics.fid.InceptionFeatures`.
"""

from pathlib import Path

MODULES = ("band_fidelity", "fid_kid")


def module_path(name: str) -> str:
    """The folder of one of :data:`MODULES`, for ``evaluate.load``."""
    if name not in MODULES:
        raise ValueError(f"Unknown wkd_hf evaluate module {name!r}; choose from {MODULES}.")
    return str(Path(__file__).resolve().parent / name)
