"""Stroke edit: paint rough coloured strokes on a blank canvas or over an image; the model makes them real.

Strength says how much may change (app.forms.stroke_start turns it into the starting index into the sigma grid,
SDEdit); live mode re-renders each time the pen lifts (or a stroke is undone), the last change winning, which a
1-3 evaluation edit and the light canvas of app.tabs.stroke_canvas make possible.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr
from PIL import Image

from app.errors import guarded
from app.forms import GRID, STROKE_STRENGTH
from app.progress import progress_callback, session
from app.tabs.canvas import canvas_background, painted_canvas
from app.tabs.examples import ExampleGalleries
from app.tabs.inputs import UNDOCUMENTED, CheckboxInput, SliderInput, image_input, seed_row, variations_slider
from app.tabs.outputs import result_outputs, stop_button
from app.tabs.stroke_canvas import StrokeCanvas

if TYPE_CHECKING:
    from app.studio import Studio

PALETTE = ["#000000", "#ffffff", "#e53935", "#fb8c00", "#fdd835", "#43a047", "#1e88e5", "#8e24aa", "#6d4c41",
           "#f8bbd0"]


def strength_info(studio: Studio, model_name: str | None, strength: Any) -> str:
    """The strength slider's info line: the plain scale, then the technical value."""
    try:
        technical = studio.stroke_start_text(model_name, strength)
    except ValueError:
        technical = f"starts at index {GRID - 1}-strength of the {GRID}-point sigma grid"
    return f"1: a touch-up; {GRID - 1}: a new image from pure noise. Technical: {technical}"


def create_tab(studio: Studio, model: gr.Dropdown, style: gr.Dropdown, examples: ExampleGalleries) -> None:
    with gr.Tab("Stroke edit", id="stroke_edit", elem_id="tab-stroke_edit"):
        gr.Markdown("Paint rough strokes; higher strength lets more of the picture change. Over a start image on a "
                    "photo model only the strokes and their surroundings change. Turn on live mode to re-render as "
                    "you paint.")
        with gr.Row():
            with gr.Column(scale=1, elem_id="stroke-left"):
                canvas = StrokeCanvas(label="Canvas", palette=PALETTE, colour="#e53935", brush=40,
                                      live_checkbox="stroke-live", elem_id="stroke-canvas")
                with gr.Row(elem_id="stroke-actions"):  # next to the canvas: painting live needs no scrolling
                    live = CheckboxInput(value=False, elem_id="stroke-live",
                                         label="Live mode (re-render each time the pen lifts, 1 variation)")
                    run = gr.Button("Render", variant="primary")
                    stop_slot = gr.Column(min_width=80)
                    blank = gr.Button("Blank canvas", size="sm")
                with gr.Accordion("Start from an image", open=False):
                    start_image = image_input("Start image", height=180)
                    examples.under([start_image])
                strength = SliderInput(1, GRID - 1, value=STROKE_STRENGTH, step=1,
                                       label="Strength: how much may change",
                                       info=strength_info(studio, studio.default_model, STROKE_STRENGTH),
                                       elem_id="stroke-strength")
                steps = SliderInput(1, 8, value=2, step=1, label="Steps (network evaluations)")
                seed = seed_row("stroke_edit")
                variations = variations_slider(2)
            with gr.Column(scale=1, elem_id="stroke-right"):
                out = result_outputs("Rendered", columns=2, before_after="stroke_edit")

    @guarded
    def start_canvas(image_path: str | None, model_name: str) -> Any:
        return canvas_background(studio, image_path, model_name) if image_path else None

    @guarded
    def stroke_edit(start_image: str | None, canvas: Image.Image | None, strength: float, steps: float, seed: float,
                    variations: float, model_name: str, style_name: str,
                    request: gr.Request, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        editor = painted_canvas(studio, start_image, model_name, canvas)
        result = studio.stroke_edit(model_name, style_name, start_image, editor, strength, steps, seed, variations,
                                    progress_callback(progress, "rendering", studio.cancels.watch(session(request))))
        return out.values(result)

    @guarded
    def stroke_edit_live(is_live: bool, start_image: str | None, canvas: Image.Image | None, strength: float,
                         steps: float, seed: float, model_name: str, style_name: str) -> tuple[Any, ...]:
        if not is_live or (canvas is None and not start_image):  # live mode waits for something to render
            return tuple(gr.skip() for _ in out.as_list())
        editor = painted_canvas(studio, start_image, model_name, canvas)
        result = studio.stroke_edit(model_name, style_name, start_image, editor, strength, steps, seed, 1)
        return out.values(result)

    def show_strength(strength: float, model_name: str) -> Any:
        return gr.Slider(info=strength_info(studio, model_name, strength))

    gr.on([strength.release, model.change], show_strength, inputs=[strength, model], outputs=strength,
          api_name="stroke_strength_info", api_visibility=UNDOCUMENTED, show_progress="hidden")
    canvas_set = [
        start_image.change(start_canvas, inputs=[start_image, model], outputs=canvas, api_name="stroke_canvas",
                           api_visibility=UNDOCUMENTED, show_progress="hidden"),
        model.change(start_canvas, inputs=[start_image, model], outputs=canvas, api_visibility=UNDOCUMENTED,
                     show_progress="hidden"),
        blank.click(lambda: (None, None), outputs=[start_image, canvas], api_name="stroke_blank",
                    api_visibility=UNDOCUMENTED)]
    running = run.click(stroke_edit, inputs=[start_image, canvas, strength, steps, seed, variations, model, style],
                        outputs=out.as_list(), api_name="stroke_edit")
    with stop_slot:
        stop_button(studio, "stroke_edit", running)
    live_inputs = [live, start_image, canvas, strength, steps, seed, model, style]
    live_options: dict[str, Any] = dict(inputs=live_inputs, outputs=out.as_list(), api_visibility=UNDOCUMENTED,
                                        trigger_mode="always_last", show_progress="minimal",
                                        concurrency_id="stroke_live", concurrency_limit=1)
    # The canvas sends `input` when the pen lifts (in live mode only). A canvas the studio sets (a start image,
    # a blank one) renders once it is set.
    gr.on([canvas.input, strength.release, steps.release, live.change], stroke_edit_live,
          api_name="stroke_edit_live", **live_options)
    for event in canvas_set:
        event.then(stroke_edit_live, **live_options)
