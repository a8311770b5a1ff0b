"""Colorize: a grayscale (or colour, reduced to its luma) image becomes colour; several variations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from app.errors import guarded
from app.progress import progress_callback, session
from app.tabs.examples import ExampleGalleries
from app.tabs.inputs import edit_with_radio, image_input, seed_row, steps_picker, variations_slider
from app.tabs.outputs import result_outputs, stop_button, time_estimate

if TYPE_CHECKING:
    from app.studio import Studio


def create_tab(studio: Studio, model: gr.Dropdown, style: gr.Dropdown, examples: ExampleGalleries) -> None:
    with gr.Tab("Colorize", id="colorize", elem_id="tab-colorize"):
        gr.Markdown("The luma of the upload is kept exactly; the model chooses the colours.")
        with gr.Row():
            with gr.Column(scale=1):
                image = image_input("Grayscale or colour image")
                examples.under([image])
                steps = steps_picker("editing 18")
                edit_with = edit_with_radio()
                seed = seed_row("colorize")
                variations = variations_slider()
                time_estimate(studio, "colorize", [image, steps, variations, model],
                              lambda i, st, v, m: studio.colorize_estimate(m, i, st, v))
                with gr.Row():
                    run = gr.Button("Colorize", variant="primary", scale=3)
                    stop_slot = gr.Column(scale=1, min_width=80)
            with gr.Column(scale=1):
                out = result_outputs("Colorized", columns=2, before_after="colorize")

    @guarded
    def colorize(image: str | None, steps: str, seed: float, variations: float, model_name: str, style_name: str,
                 edit_with: str, request: gr.Request, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        result = studio.colorize(model_name, style_name, image, steps, seed, variations,
                                 progress_callback(progress, "colorizing", studio.cancels.watch(session(request))),
                                 edit_with=edit_with)
        return out.values(result)

    running = run.click(colorize, inputs=[image, steps, seed, variations, model, style, edit_with],
                        outputs=out.as_list(),
                        api_name="colorize")
    with stop_slot:
        stop_button(studio, "colorize", running)

