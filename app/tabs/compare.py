"""Steps vs quality: one input at 1, 2, 3, 4 and 8 steps and by the teacher (Heun, 18 steps), with a plot."""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING, Any

import gradio as gr
import pandas as pd

from app.errors import guarded
from app.progress import progress_callback
from app.tabs.examples import ExampleGalleries
from app.tabs.inputs import UNDOCUMENTED, image_input, seed_row
from app.tabs.outputs import PIXELATED, result_outputs

if TYPE_CHECKING:
    from app.studio import Studio


TABLE_HEADERS = {"psnr_db": "PSNR (dB)"}  # CompareRow fields whose name is not the table's header


def create_tab(studio: Studio, model: gr.Dropdown, style: gr.Dropdown, examples: ExampleGalleries) -> None:
    rows, plot_note = studio.benchmark_rows()
    with gr.Tab("Steps vs quality", id="compare", elem_id="tab-compare"):
        gr.Markdown("The same input rendered with more network evaluations. Without a reference image: generation "
                    "from the seed, compared with the diffusion teacher's sample from the same noise. With one: "
                    "restoring it from a 4x downsample, compared with the image itself (on a photo model, its "
                    "centre at its own scale, up to 4 tiles wide, and the teacher's D beside the steps).")
        with gr.Row():
            with gr.Column(scale=1):
                seed = seed_row("compare")
                reference = image_input("Reference image (optional)", height=180)
                examples.under([reference])
                run = gr.Button("Compare", variant="primary")
            with gr.Column(scale=1, min_width=160):
                shown_reference = gr.Image(label="Reference (what each result is compared with)",
                                           interactive=False, format="png", elem_classes=[PIXELATED],
                                           elem_id="compare-reference", height=260)
            with gr.Column(scale=3):
                out = result_outputs("By step count", columns=3)
                table = gr.Dataframe(label="Runs", interactive=False)
        plotted = {row["model"] for row in rows}
        # The plot is of the models the benchmarks sampled: shown while one of them (or nothing yet) is chosen.
        with gr.Column(visible=not rows or studio.default_model in plotted) as plot_column:
            gr.Markdown(plot_note)
            if rows:
                # Coloured by series (a model, or a model on its tuned ts); each point's sampler is in its tooltip.
                # No fixed height: Gradio fits the chart to it and clips the legend below.
                gr.ScatterPlot(pd.DataFrame(rows), x="ms", y="quality", color="series",
                               tooltip=["method", "ms", "quality"], x_title="ms per image", y_title=rows[0]["metric"],
                               color_title="model and ts", label="Benchmark: quality against time",
                               elem_id="benchmark-plot")
        if rows:
            model.change(lambda name: gr.Column(visible=name in plotted), inputs=model, outputs=plot_column,
                         api_name="compare_plot", api_visibility=UNDOCUMENTED, show_progress="hidden")

    @guarded
    def compare(seed: float, reference: str | None, model_name: str, style_name: str,
                progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        result = studio.compare(model_name, style_name, seed, reference, progress_callback(progress, "comparing"))
        table = pd.DataFrame([asdict(row) for row in result.rows]).rename(columns=TABLE_HEADERS)
        return result.gallery(), result.notes_markdown(), result.files, table, result.reference

    run.click(compare, inputs=[seed, reference, model, style], outputs=[*out.as_list(), table, shown_reference],
              api_name="compare")
