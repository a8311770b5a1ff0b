"""Generate: a style, a seed, a batch, a step preset or ts list; a gallery with each image's seed."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from app.errors import guarded
from app.progress import progress_callback
from app.tabs.examples import ExampleGalleries
from app.tabs.inputs import SliderInput, seed_row, steps_picker
from app.tabs.outputs import result_outputs

if TYPE_CHECKING:
    from app.studio import Studio


def create_tab(studio: Studio, model: gr.Dropdown, style: gr.Dropdown, examples: ExampleGalleries) -> None:
    with gr.Tab("Generate", id="generate", elem_id="tab-generate"):
        gr.Markdown("Sample images from noise in 1-8 network evaluations (Algorithm 1). "
                    "Batch images use seeds seed, seed+1, ...")
        with gr.Row():
            with gr.Column(scale=1):
                seed = seed_row("generate")
                batch = SliderInput(1, 16, value=8, step=1, label="Batch size")
                # Two evaluations by default: clearly sharper than one on the shipped model (benchmarks/RESULTS.md).
                steps = steps_picker("2")
                run = gr.Button("Generate", variant="primary")
            with gr.Column(scale=2):
                out = result_outputs("Samples")

    @guarded
    def generate(seed: float, batch: float, steps: str, model_name: str, style_name: str,
                 progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        result = studio.generate(model_name, style_name, seed, batch, steps, progress_callback(progress, "sampling"))
        return result.gallery(), result.notes_markdown(), result.files

    run.click(generate, inputs=[seed, batch, steps, model, style], outputs=out.as_list(), api_name="generate")
