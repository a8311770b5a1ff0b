"""Interpolate: between two seeds or two images, N frames, shown as a strip and as an animated GIF."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from app.errors import guarded
from app.progress import progress_callback
from app.tabs.inputs import NumberInput, SliderInput, image_input, seed_row, steps_picker
from app.tabs.outputs import PIXELATED, result_outputs

from editing.schedules import PRESETS

if TYPE_CHECKING:
    from app.studio import Studio

MODES = [("Two seeds", "seeds"), ("Two images", "images")]


def create_tab(studio: Studio, model: gr.Dropdown, style: gr.Dropdown, example_paths: list[str]) -> None:
    with gr.Tab("Interpolate", id="interpolate", elem_id="tab-interpolate"):
        gr.Markdown("Two seeds: the noises are slerped and each frame is sampled. Two images: both are noised "
                    "with one shared noise, blended, and denoised.")
        with gr.Row():
            with gr.Column(scale=1):
                mode = gr.Radio(MODES, value="seeds", label="Between")
                with gr.Row():
                    seed_a = NumberInput(label="First seed", value=1, precision=0, minimum=0)
                    seed_b = NumberInput(label="Second seed", value=2, precision=0, minimum=0)
                with gr.Row():
                    image_a = image_input("First image", height=180)
                    image_b = image_input("Second image", height=180)
                if len(example_paths) >= 2:
                    pairs = [[a, b] for a, b in zip(example_paths, example_paths[1:] + example_paths[:1])]
                    gr.Examples(examples=pairs, inputs=[image_a, image_b], label="Held-out example pairs",
                                cache_examples=False, examples_per_page=6)
                frames = SliderInput(2, 16, value=8, step=1, label="Frames")
                steps = steps_picker("1 step", label="Steps (for images: the schedule, default "
                                                      f"{','.join(map(str, PRESETS['strokes'].ts))})")
                seed = seed_row("interpolate", label="Noise seed (two images)")
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
        if mode_name == "images" and steps == "1 step":
            steps = ""  # the image mode's own default schedule
        result = studio.interpolate(model_name, style_name, mode_name, seed_a, seed_b, image_a, image_b, frames,
                                    steps, seed, progress_callback(progress, "interpolating"))
        return result.strip, result.gif, result.gallery(), result.notes_markdown(), result.files

    run.click(interpolate, inputs=[mode, seed_a, seed_b, image_a, image_b, frames, steps, seed, model, style],
              outputs=[strip, gif, *out.as_list()], api_name="interpolate")
