"""Super-resolve: upscale a small image by 2x or 4x, or shrink a full-size one and restore it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from app.errors import guarded
from app.progress import progress_callback
from app.tabs.examples import examples
from app.tabs.inputs import image_input, seed_row, steps_picker, variations_slider
from app.tabs.outputs import PIXELATED, result_outputs

if TYPE_CHECKING:
    from app.studio import Studio

MODES = [("Upscale a small image", "upscale"), ("Downsample, then restore (shows the effect)", "restore")]


def create_tab(studio: Studio, model: gr.Dropdown, style: gr.Dropdown, example_paths: list[str]) -> None:
    with gr.Tab("Super-resolve", id="superresolve", elem_id="tab-superresolve"):
        gr.Markdown("Every factor x factor block mean of the small image is kept exactly; "
                    "the model invents the detail inside the blocks.")
        with gr.Row():
            with gr.Column(scale=1):
                image = image_input("Image")
                examples(example_paths, [image])
                factor = gr.Radio([2, 4], value=4, label="Factor")
                mode = gr.Radio(MODES, value="restore", label="Mode")
                steps = steps_picker("editing 18")
                seed = seed_row("superresolve")
                variations = variations_slider()
                run = gr.Button("Super-resolve", variant="primary")
            with gr.Column(scale=1):
                low_view = gr.Image(label="Input at low resolution (nearest)", interactive=False, height=260,
                                    elem_classes=[PIXELATED], format="png")
                out = result_outputs("Super-resolved", columns=2)

    @guarded
    def superresolve(image: str | None, factor: int, mode: str, steps: str, seed: float, variations: float,
                     model_name: str, style_name: str, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        result = studio.superresolve(model_name, style_name, image, factor, mode, steps, seed, variations,
                                     progress_callback(progress, "super-resolving"))
        return result.input_view, result.gallery(), result.notes_markdown(), result.files

    run.click(superresolve, inputs=[image, factor, mode, steps, seed, variations, model, style],
              outputs=[low_view, *out.as_list()], api_name="superresolve")
