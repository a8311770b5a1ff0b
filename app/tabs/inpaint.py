"""Inpaint: an image, a mask painted with the brush (or uploaded), steps, seed and variations."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from editing import images
from app.tabs.common import (DrawingEditor, UNDOCUMENTED, examples, guarded, image_input, progress_callback, result_outputs,
                             seed_row, steps_picker, variations_slider)

if TYPE_CHECKING:
    from app.studio import Studio

CANVAS = 512  # the editor shows the image enlarged (nearest) so the brush is precise


def create_tab(studio: Studio, model: gr.Dropdown, style: gr.Dropdown, example_paths: list[str]) -> None:
    with gr.Tab("Inpaint", id="inpaint", elem_id="tab-inpaint"):
        gr.Markdown("Upload an image, paint over what should be replaced (any brush colour), and fill it in. "
                    "Pixels outside the mask are kept exactly (Algorithm 4).")
        with gr.Row():
            with gr.Column(scale=1):
                image = image_input("Image")
                examples(example_paths, [image])
                editor = DrawingEditor(
                    label="Paint the mask", type="pil", image_mode="RGBA", format="png", sources=[],
                    brush=gr.Brush(default_size=48, colors=["#ff00ff"], color_mode="fixed"),
                    transforms=[], layers=False, canvas_size=(CANVAS, CANVAS), fixed_canvas=True,
                    height=CANVAS + 80)
                with gr.Accordion("...or upload a mask (white = fill)", open=False):
                    mask = image_input("Mask", height=180)
                steps = steps_picker("editing 18")
                seed = seed_row("inpaint")
                variations = variations_slider()
                run = gr.Button("Inpaint", variant="primary")
            with gr.Column(scale=1):
                out = result_outputs("Inpainted", columns=2)

    @guarded
    def load_canvas(image_path: str | None, model_name: str) -> Any:
        """Show the upload, converted to the model's resolution and enlarged, as the editor's background."""
        if not image_path:
            return None
        converted = images.load_image(image_path, studio.resolution(model_name))
        background = images.enlarge(images.to_pil(converted.tensor)[0], CANVAS)
        return {"background": background, "layers": [], "composite": background}

    @guarded
    def inpaint(image: str | None, editor: dict | None, mask: str | None, steps: str, seed: float,
                variations: float, model_name: str, style_name: str,
                progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        result = studio.inpaint(model_name, style_name, image, mask, editor, steps, seed, variations,
                                progress_callback(progress, "inpainting"))
        return result.gallery(), result.notes_markdown(), result.files

    image.change(load_canvas, inputs=[image, model], outputs=editor, api_name="inpaint_canvas",
                 api_visibility=UNDOCUMENTED, show_progress="hidden")
    run.click(inpaint, inputs=[image, editor, mask, steps, seed, variations, model, style], outputs=out.as_list(),
              api_name="inpaint")
