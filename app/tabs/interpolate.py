"""Interpolate: between two seeds or two images, N frames, shown as a strip and as an animated GIF."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from app.errors import guarded
from app.progress import progress_callback
from app.tabs.examples import ExampleGalleries
from app.tabs.inputs import (UNDOCUMENTED, NumberInput, SliderInput, image_input, seed_row, steps_picker,
                             steps_picker_update)
from app.tabs.outputs import PIXELATED, result_outputs

from editing.schedules import PRESETS

if TYPE_CHECKING:
    from app.studio import Studio

MODES = [("Two seeds", "seeds"), ("Two images", "images")]
# Each mode's default steps: one step from noise for seeds; for images, the stroke edit's schedule (they are
# noised part-way, to its first index, then denoised).
DEFAULT_STEPS = {"seeds": "1 step", "images": ",".join(map(str, PRESETS["strokes"].ts))}


def create_tab(studio: Studio, model: gr.Dropdown, style: gr.Dropdown, examples: ExampleGalleries) -> None:
    with gr.Tab("Interpolate", id="interpolate", elem_id="tab-interpolate"):
        gr.Markdown("Two seeds: the noises are slerped and each frame is sampled. Two images: both are noised "
                    "with one shared noise, blended, and denoised.")
        with gr.Row():
            with gr.Column(scale=1):
                mode = gr.Radio(MODES, value="seeds", label="Between")
                with gr.Row(visible=True, elem_id="interpolate-seed-fields") as seed_fields:
                    seed_a = NumberInput(label="First seed", value=1, precision=0, minimum=0)
                    seed_b = NumberInput(label="Second seed", value=2, precision=0, minimum=0)
                with gr.Column(visible=False, elem_id="interpolate-image-fields") as image_fields:
                    with gr.Row():
                        image_a = image_input("First image", height=180)
                        image_b = image_input("Second image", height=180)
                    examples.pairs_under([image_a, image_b])
                    seed = seed_row("interpolate", label="Noise seed")
                frames = SliderInput(2, 16, value=8, step=1, label="Frames")
                steps = steps_picker(DEFAULT_STEPS["seeds"])
                run = gr.Button("Interpolate", variant="primary")
            with gr.Column(scale=2):
                strip = gr.Image(label="Strip", interactive=False, elem_classes=[PIXELATED], format="png")
                gif = gr.Image(label="Animated GIF", interactive=False, elem_classes=[PIXELATED], format="gif",
                               height=256)
                out = result_outputs("Frames", columns=4)

    @guarded
    def interpolate(mode_name: str, seed_a: float, seed_b: float, image_a: str | None, image_b: str | None,
                    frames: float, steps: str, seed: float, model_name: str, style_name: str,
                    progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        result = studio.interpolate(model_name, style_name, mode_name, seed_a, seed_b, image_a, image_b, frames,
                                    steps, seed, progress_callback(progress, "interpolating"))
        return result.strip, result.gif, result.gallery(), result.notes_markdown(), result.files

    def show_mode(mode_name: str) -> tuple[Any, ...]:
        """Only the chosen mode's fields, and its default steps in the steps box (what will run)."""
        images = mode_name == "images"
        return (gr.Row(visible=not images), gr.Column(visible=images),
                steps_picker_update(DEFAULT_STEPS.get(mode_name, DEFAULT_STEPS["seeds"])))

    mode.change(show_mode, inputs=mode, outputs=[seed_fields, image_fields, steps], api_name="interpolate_mode",
                api_visibility=UNDOCUMENTED, show_progress="hidden")
    run.click(interpolate, inputs=[mode, seed_a, seed_b, image_a, image_b, frames, steps, seed, model, style],
              outputs=[strip, gif, *out.as_list()], api_name="interpolate")
