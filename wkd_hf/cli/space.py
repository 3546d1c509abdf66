"""``wkd-space``: write a student's Gradio Space folder, and optionally push it to the Hub or
serve it here (``--launch``, on 127.0.0.1)."""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
from collections.abc import Sequence

from ..cards import is_hub_id
from ..names import ARGS_FILE
from ..space import writer
from ..space.models import load_networks
from ..space.writer import validation_images
from . import PLAIN_ERRORS, guarded

PROG = "wkd-space"


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog=PROG, allow_abbrev=False,
        description="Write a Gradio Space (app.py, requirements.txt, README.md, examples/) that "
                    "shows a student beside its teacher, with latencies, params and MACs.")
    p.add_argument("--model", required=True, help="The student: an output folder (CycleGAN "
                   "folders offer both directions), a saved pipeline, or a Hub id.")
    p.add_argument("--teacher", default=None, help="Its teacher (same forms); optional.")
    p.add_argument("--output_dir", default=None, help="Where to write the Space folder (new or "
                   "an earlier Space folder; default with --launch/--push_to_hub: a temporary "
                   "folder).")
    p.add_argument("--examples", nargs="+", default=None, metavar="IMAGE",
                   help="Example images (default: the run's first validation images, when its "
                        "data can be read here).")
    p.add_argument("--title", default=None, help="The page's title.")
    p.add_argument("--max_side", type=int, default=None,
                   help="Uploads with a longer side are resized to it (default 1024).")
    p.add_argument("--size_mode", choices=("pad", "resize"), default=None,
                   help="How uploads meet the networks: resize to the training resolution and "
                        "back, or pad to what they accept (fully convolutional, e.g. the demo's "
                        "denoiser). Default: as ImageTranslationPipeline (resize when the "
                        "resolution is known).")
    p.add_argument("--requirement", default=None,
                   help="How the Space installs wkd_hf (default: wkd_hf==<this version>; e.g. a "
                        "git+https URL of your fork).")
    p.add_argument("--push_to_hub", action="store_true",
                   help="Create (or open) the Gradio Space --hub_space_id and upload the folder.")
    p.add_argument("--hub_space_id", default=None, help="e.g. user/my-student-demo.")
    p.add_argument("--model_hub_id", default=None,
                   help="The student's Hub id when --model is a local folder (the pushed Space "
                        "loads it from there; listed under models:).")
    p.add_argument("--teacher_hub_id", default=None, help="Likewise for --teacher.")
    p.add_argument("--hub_token", default=None,
                   help="A Hub token (default: `hf auth login` / HF_TOKEN); never written.")
    p.add_argument("--hub_private_repo", action="store_true", help="Create the Space private.")
    p.add_argument("--launch", action="store_true",
                   help="Serve the page here on 127.0.0.1 (from the local folders).")
    p.add_argument("--port", type=int, default=None, help="--launch port (default 7860 or the "
                   "next free one).")
    return p.parse_args(argv)


def _hub_ids(args: argparse.Namespace) -> tuple[str | None, str | None]:
    """The student's and teacher's Hub ids, required for a push."""
    student = args.model_hub_id or (args.model if is_hub_id(args.model) else None)
    teacher = args.teacher_hub_id or (args.teacher if args.teacher and is_hub_id(args.teacher)
                                      else None)
    if args.push_to_hub:
        if not args.hub_space_id:
            raise ValueError("--push_to_hub needs --hub_space_id (e.g. user/my-student-demo)")
        if student is None:
            raise ValueError(f"--model {args.model} is a local folder and the Space loads its "
                             "models from the Hub: push it first and pass --model_hub_id")
        if args.teacher and teacher is None:
            raise ValueError(f"--teacher {args.teacher} is a local folder: pass --teacher_hub_id")
    return student, teacher


def _examples(args: argparse.Namespace) -> list:
    if args.examples:
        return args.examples
    if not os.path.isfile(os.path.join(args.model, ARGS_FILE)):
        return []  # not a run folder (a saved pipeline, a Hub id)
    try:
        return validation_images(args.model)
    except Exception as err:  # noqa: BLE001 - no examples is fine: visitors upload their own
        print(f"wkd-space: no examples from the run's validation images ({type(err).__name__}: "
              f"{err}); pass --examples to add some.".splitlines()[0], file=sys.stderr)
        return []


def run(args: argparse.Namespace) -> str:
    """Write (and push / serve) the Space; returns the folder."""
    student_id, teacher_id = _hub_ids(args)
    if args.push_to_hub:
        writer.check_hub_reachable()  # before any work
    if args.max_side is not None and args.max_side < 8:
        raise ValueError(f"--max_side must be >= 8; got {args.max_side}")
    # they load, or nothing is written
    networks = load_networks(args.model, args.teacher, size_mode=args.size_mode)
    output_dir = args.output_dir
    if output_dir is None:
        if not (args.launch or args.push_to_hub):
            raise ValueError("pass --output_dir (or --launch / --push_to_hub)")
        output_dir = os.path.join(tempfile.mkdtemp(prefix="wkd-space-"), "space")
    pushed = args.push_to_hub
    folder = writer.write_space(
        output_dir, student_id if pushed else args.model,
        (teacher_id if pushed else args.teacher), student_hub_id=student_id,
        teacher_hub_id=teacher_id, examples=_examples(args), title=args.title,
        requirement=args.requirement, max_side=args.max_side, size_mode=args.size_mode)
    print(f"wrote the Space folder {folder}")
    if pushed:
        url = writer.push_space(folder, args.hub_space_id, args.hub_token, args.hub_private_repo)
        print(f"pushed it to {url}")
    if args.launch:
        from ..space.app import build_demo  # gradio: only when serving

        config = json.loads((folder / writer.CONFIG_FILE).read_text(encoding="utf-8"))
        # the local folders' networks, also after a push
        build_demo(config, folder, networks).launch(server_name="127.0.0.1",
                                                    server_port=args.port)
    return str(folder)


def main(argv: Sequence[str] | None = None) -> int:
    """``wkd-space``: a problem is one ``error:`` line (exit 1), never a traceback."""
    args = parse_args(argv)
    return guarded(PROG, lambda: _run(args), plain=PLAIN_ERRORS)


def _run(args: argparse.Namespace) -> int:
    run(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
