"""The Space's page: upload a file or pick an example; input | teacher | student side by side, each
output with its measured latency, params and MACs; the card's evaluation table below.

    demo = build_demo({"student": "out/student", "teacher": "out/teacher"})
    demo.launch(server_name="127.0.0.1")
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")  # nothing leaves a local demo

import gradio as gr  # noqa: E402

from ..data.images import to_rgb  # noqa: E402
from .models import (  # noqa: E402
    DEFAULT_MAX_SIDE,
    NotAnImageError,
    describe,
    load_networks,
    open_upload,
    translate_timed,
    warm_up,
)

ROLES = ("teacher", "student")


def _translator(networks, max_side: int):
    """The click handler: (file path, direction) -> input, teacher, student images, their
    captions, and the message line (a problem with the upload is shown there, never raised)."""
    empty = (None, None, None, "", "")

    def translate(path: str | None, direction: str | None):
        if not path:
            return *empty, "Upload an image or pick an example."
        try:
            image, note = open_upload(path, max_side)
        except NotAnImageError as err:
            return *empty, f"⚠️ {err}"
        pair = networks[direction or next(iter(networks))]
        outputs, captions = {}, {}
        for role in ROLES:
            if role in pair:
                outputs[role], ms, ran_at = translate_timed(pair[role], image)
                captions[role] = describe(role, pair[role], ms, ran_at)
        height = image.size[1]
        message = note or f"Input {image.size[0]}x{height} ({image.mode})."
        return (to_rgb(image), outputs.get("teacher"), outputs.get("student"),
                captions.get("teacher", ""), captions.get("student", ""), message)

    return translate


def build_demo(config: Mapping[str, Any], folder: str | os.PathLike = ".",
               networks: dict | None = None) -> gr.Blocks:
    """The page for ``config`` (``space_config.json``: ``student``, optional ``teacher``, ``title``,
    ``examples`` (file names in ``folder/examples``), ``card_markdown``, ``max_side``,
    ``size_mode``);
    ``networks``: already loaded (:func:`load_networks`), else loaded from ``config``."""
    networks = networks or load_networks(config["student"], config.get("teacher"),
                                         size_mode=config.get("size_mode"))
    warm_up(networks)
    max_side = int(config.get("max_side") or DEFAULT_MAX_SIDE)
    examples = [str(Path(folder) / "examples" / name) for name in config.get("examples", [])]
    has_teacher = "teacher" in next(iter(networks.values()))
    with gr.Blocks(title=config.get("title", "wkd_hf student")) as demo:
        gr.Markdown(f"# {config.get('title', 'wkd_hf student')}\n\n{config.get('intro', '')}")
        with gr.Row():
            upload = gr.File(label="Upload an image", type="filepath", elem_id="upload")
            direction = gr.Radio(list(networks), value=next(iter(networks)), label="Direction",
                                 visible=len(networks) > 1, elem_id="direction")
        if examples:
            gr.Examples(examples=[[path] for path in examples], inputs=[upload],
                        label="Examples")
        message = gr.Markdown(elem_id="message")
        with gr.Row():
            shown = gr.Image(label="input", type="pil", elem_id="input_image", format="png")
            teacher = gr.Image(label="teacher", type="pil", elem_id="teacher_image",
                               format="png", visible=has_teacher)
            student = gr.Image(label="student", type="pil", elem_id="student_image",
                               format="png")
        with gr.Row():
            gr.Markdown()
            teacher_caption = gr.Markdown(elem_id="teacher_stats", visible=has_teacher)
            student_caption = gr.Markdown(elem_id="student_stats")
        if config.get("card_markdown"):
            with gr.Accordion("Evaluation (from the model card)", open=True):
                gr.Markdown(config["card_markdown"], elem_id="card")
        outputs = [shown, teacher, student, teacher_caption, student_caption, message]
        handler = _translator(networks, max_side)
        upload.change(handler, [upload, direction], outputs)
        direction.change(handler, [upload, direction], outputs)
    return demo
