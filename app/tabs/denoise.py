"""Denoise: the noise level is estimated (and can be overridden); an "add noise" helper; before/after."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from app.errors import guarded
from app.progress import progress_callback
from app.tabs.examples import examples
from app.tabs.inputs import UNDOCUMENTED, CheckboxInput, NumberInput, SliderInput, image_input, seed_row
from app.tabs.outputs import PIXELATED, result_outputs

if TYPE_CHECKING:
    from app.studio import Studio


def create_tab(studio: Studio, model: gr.Dropdown, style: gr.Dropdown, example_paths: list[str]) -> None:
    with gr.Tab("Denoise", id="denoise", elem_id="tab-denoise"):
        gr.Markdown("One evaluation of the consistency function at the image's noise level, optionally refined. "
                    "Noise levels are standard deviations on the [-1, 1] pixel scale.")
        with gr.Row():
            with gr.Column(scale=1):
                image = image_input("Noisy image")
                examples(example_paths, [image])
                with gr.Accordion("Add noise (to try it on a clean image)", open=False):
                    noise_sigma = SliderInput(0.0, 1.0, value=0.2, step=0.01, label="Noise sigma")
                    noise_seed = NumberInput(label="Noise seed", value=0, precision=0, minimum=0)
                    add = gr.Button("Add noise to the image")
                override = CheckboxInput(value=False, label="Override the estimated noise level")
                sigma = SliderInput(0.002, 2.0, value=0.2, step=0.001, label="Noise sigma to use")
                refine = SliderInput(0, 8, value=0, step=1, label="Refinement steps")
                seed = seed_row("denoise")
                run = gr.Button("Denoise", variant="primary")
            with gr.Column(scale=1):
                estimate = gr.Markdown()
                # max_height, not height: a fixed height makes Gradio zoom both images to fill it, cropping them.
                slider = gr.ImageSlider(label="Before / after", type="filepath", format="png", interactive=False,
                                        elem_classes=[PIXELATED], max_height=420, elem_id="denoise-slider")
                out = result_outputs("Denoised", columns=2)

    @guarded
    def add_noise(image: str | None, noise_sigma: float, noise_seed: float, model_name: str) -> tuple[Any, ...]:
        path, notes = studio.add_noise(model_name, image, noise_sigma, noise_seed)
        return path, "\n".join(f"- {n}" for n in notes)

    @guarded
    def denoise(image: str | None, use_override: bool, sigma: float, refine: float, seed: float, model_name: str,
                style_name: str, progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        result = studio.denoise(model_name, style_name, image, sigma if use_override else None, refine, seed,
                                progress_callback(progress, "denoising"))
        summary = (f"**Estimated noise sigma: {result.estimated:.4f}** · "
                   f"used: {result.used:.4f}")
        return summary, (result.before, result.enlarged[0]), result.gallery(), result.notes_markdown(), \
            result.files

    add.click(add_noise, inputs=[image, noise_sigma, noise_seed, model], outputs=[image, estimate],
              api_name="add_noise")
    run.click(denoise, inputs=[image, override, sigma, refine, seed, model, style],
              outputs=[estimate, slider, *out.as_list()], api_name="denoise")
    image.change(lambda: None, outputs=slider, api_name="denoise_clear", api_visibility=UNDOCUMENTED,
                 queue=False, show_progress="hidden")
