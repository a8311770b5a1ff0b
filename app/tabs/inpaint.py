"""Inpaint: an image, a mask painted with the brush (or uploaded), steps, seed and variations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from app import forms
from app.errors import guarded
from app.progress import progress_callback, session
from app.tabs.canvas import CANVAS, EDITOR_HEIGHT, load_canvas
from app.tabs.editor import DrawingEditor
from app.tabs.examples import ExampleGalleries
from app.tabs.inputs import UNDOCUMENTED, edit_with_radio, image_input, seed_row, steps_picker, variations_slider
from app.tabs.outputs import result_outputs, stop_button, time_estimate

if TYPE_CHECKING:
    from app.studio import Studio


def create_tab(studio: Studio, model: gr.Dropdown, style: gr.Dropdown, examples: ExampleGalleries) -> None:
    with gr.Tab("Inpaint", id="inpaint", elem_id="tab-inpaint"):
        gr.Markdown("Upload an image, paint over what should be replaced (any brush colour), and fill it in. "
                    "Pixels outside the mask are kept exactly (Algorithm 4).")
        with gr.Row():
            with gr.Column(scale=1):
                image = image_input("Image")
                examples.under([image])
                editor = DrawingEditor(
                    label="Paint the mask", type="pil", image_mode="RGBA", format="png", sources=[],
                    brush=gr.Brush(default_size=48, colors=["#ff00ff"], color_mode="fixed"),
                    transforms=[], layers=False, canvas_size=(CANVAS, CANVAS), fixed_canvas=True,
                    height=EDITOR_HEIGHT)
                with gr.Accordion("...or upload a mask (white = fill)", open=False):
                    mask = image_input("Mask", height=180)
                steps = steps_picker(forms.AUTO_STEPS, auto="Auto: 40 steps with the diffusion teacher (18 where "
                                     "40 would shrink a photo), 18 with the consistency model")
                edit_with = edit_with_radio()
                seed = seed_row("inpaint")
                variations = variations_slider()
                time_estimate(studio, "inpaint", [image, mask, steps, variations, model, edit_with],
                              lambda i, mk, st, v, m, ew: studio.inpaint_estimate(m, i, mk, st, v, ew))
                with gr.Row():
                    run = gr.Button("Inpaint", variant="primary", scale=3)
                    stop_slot = gr.Column(scale=1, min_width=80)
            with gr.Column(scale=1):
                out = result_outputs("Inpainted", columns=2, before_after="inpaint")

    @guarded
    def image_canvas(image_path: str | None, model_name: str) -> Any:
        """Show the upload as the editor's background (app.tabs.canvas)."""
        return load_canvas(studio, image_path, model_name) if image_path else None

    @guarded
    def inpaint(image: str | None, editor: dict | None, mask: str | None, steps: str, seed: float,
                variations: float, model_name: str, style_name: str, edit_with: str,
                request: gr.Request, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        result = studio.inpaint(model_name, style_name, image, mask, editor, steps, seed, variations,
                                progress_callback(progress, "inpainting", studio.cancels.watch(session(request))),
                                edit_with=edit_with)
        return out.values(result)

    image.change(image_canvas, inputs=[image, model], outputs=editor, api_name="inpaint_canvas",
                 api_visibility=UNDOCUMENTED, show_progress="hidden")
    running = run.click(inpaint, inputs=[image, editor, mask, steps, seed, variations, model, style, edit_with],
                        outputs=out.as_list(), api_name="inpaint")
    with stop_slot:
        stop_button(studio, "inpaint", running)
