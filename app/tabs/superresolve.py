"""Super-resolve: upscale a small image by 2x or 4x, or shrink a full-size one and restore it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from app import forms
from app.errors import guarded
from app.progress import progress_callback, session
from app.tabs.examples import ExampleGalleries
from app.tabs.inputs import edit_with_radio, image_input, seed_row, steps_picker, variations_slider
from app.tabs.outputs import PIXELATED, result_outputs, stop_button, time_estimate

if TYPE_CHECKING:
    from app.studio import Studio

MODES = [("Upscale a small image", "upscale"), ("Downsample, then restore (shows the effect)", "restore")]


def create_tab(studio: Studio, model: gr.Dropdown, style: gr.Dropdown, examples: ExampleGalleries) -> None:
    with gr.Tab("Super-resolve", id="superresolve", elem_id="tab-superresolve"):
        gr.Markdown("Every factor x factor block mean of the small image is kept exactly; "
                    "the model invents the detail inside the blocks.")
        with gr.Row():
            with gr.Column(scale=1):
                image = image_input("Image")
                examples.under([image])
                # String choices: the API's page lists a Radio's choices as strings, and Gradio accepts only
                # the choices' own values.
                factor = gr.Radio(["2", "4"], value="4", label="Factor")
                mode = gr.Radio(MODES, value="restore", label="Mode")
                steps = steps_picker(forms.AUTO_STEPS, auto="Auto: 18 steps (8 or 4 where 18 would shrink an "
                                     "upscaled photo)")
                edit_with = edit_with_radio()
                seed = seed_row("superresolve")
                variations = variations_slider()
                time_estimate(studio, "superresolve", [image, factor, mode, steps, variations, model],
                              lambda i, f, md, st, v, m: studio.superresolve_estimate(m, i, st, v, f, md))
                with gr.Row():
                    run = gr.Button("Super-resolve", variant="primary", scale=3)
                    stop_slot = gr.Column(scale=1, min_width=80)
            with gr.Column(scale=1):
                low_view = gr.Image(label="Input at low resolution (nearest)", interactive=False, height=260,
                                    elem_classes=[PIXELATED], format="png")
                out = result_outputs("Super-resolved", columns=2, before_after="superresolve")

    @guarded
    def superresolve(image: str | None, factor: str, mode: str, steps: str, seed: float, variations: float,
                     model_name: str, style_name: str, edit_with: str, request: gr.Request,
                     progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        result = studio.superresolve(model_name, style_name, image, factor, mode, steps, seed, variations,
                                     progress_callback(progress, "super-resolving",
                                                       studio.cancels.watch(session(request))), edit_with=edit_with)
        return result.input_view, *out.values(result)

    running = run.click(superresolve, inputs=[image, factor, mode, steps, seed, variations, model, style, edit_with],
                        outputs=[low_view, *out.as_list()], api_name="superresolve")
    with stop_slot:
        stop_button(studio, "superresolve", running)
