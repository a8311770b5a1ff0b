"""Denoise: the noise level is estimated (and can be overridden), previewed at 100% on a window of the result
where the user clicks (on the upload, or on the noisy copy the "add noise" helper makes); before/after."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr

from app.errors import guarded
from app.progress import progress_callback, session
from app.studio import PREVIEW_SIDE
from app.tabs.examples import ExampleGalleries
from app.tabs.inputs import UNDOCUMENTED, CheckboxInput, NumberInput, SliderInput, image_input, seed_row
from app.tabs.outputs import PIXELATED, result_outputs, stop_button, time_estimate

if TYPE_CHECKING:
    from app.studio import Studio

MODES = [("Auto (faithful where there is a teacher)", "auto"), ("Faithful", "faithful"), ("Sharp", "sharp")]
NOISE_INFO = "0.1 is light grain, 0.5 heavy. Technical: the noise's standard deviation on the [-1, 1] pixel scale"


def create_tab(studio: Studio, model: gr.Dropdown, style: gr.Dropdown, examples: ExampleGalleries) -> None:
    with gr.Tab("Denoise", id="denoise", elem_id="tab-denoise"):
        gr.Markdown("One evaluation at the image's noise level: the diffusion teacher's (faithful) or the "
                    "consistency model's (sharp, optionally refined).")
        with gr.Row():
            with gr.Column(scale=1):
                image = image_input("Noisy image")
                examples.under([image], photos=examples.sets.noisy_photos + examples.sets.photos)
                with gr.Accordion("Add noise (to try it on a clean image)", open=False):
                    noise_sigma = SliderInput(0.0, 1.0, value=0.2, step=0.01, label="Noise to add",
                                              info=NOISE_INFO)
                    noise_kind = gr.Radio([("the same everywhere (white)", "white"),
                                           ("a camera's (larger in the shadows)", "camera")], value="white",
                                          label="Kind of noise",
                                          info="a camera's: its level here at mid grey; Denoise reads such noise "
                                          "as a curve against the brightness")
                    noise_seed = NumberInput(label="Noise seed", value=0, precision=0, minimum=0)
                    add = gr.Button("Make a noisy copy")
                    # The copy goes here, at the size Denoise takes the upload (the model's square, or a photo
                    # model's upload fitted to the limits); the upload above stays as it was.
                    noisy = gr.Image(label="Noisy copy", type="filepath", interactive=False, format="png",
                                     height=180, elem_classes=[PIXELATED], elem_id="denoise-noisy-copy")
                    run_noisy = gr.Button("Denoise the noisy copy")
                override = CheckboxInput(value=False, label="Set the noise level myself")
                sigma = SliderInput(0.002, 2.0, value=0.2, step=0.001, label="Noise level to use",
                                    info=NOISE_INFO + " (used only when set above)", interactive=False,
                                    elem_id="denoise-sigma")
                mode = gr.Radio(MODES, value="auto", label="Mode",
                                info="faithful: closest to the true image (highest PSNR; needs the model's "
                                "diffusion teacher); sharp: the consistency model, crisper, with refinement")
                refine = SliderInput(0, 8, value=0, step=1, label="Refinement steps (sharp mode)",
                                     info="0: one evaluation; more: re-noise and denoise again, sharper")
                seed = seed_row("denoise")
                time_estimate(studio, "denoise", [image, refine, model],
                              lambda i, rf, m: studio.denoise_estimate(m, i, rf))
                with gr.Row():
                    run = gr.Button("Denoise", variant="primary", scale=3)
                    stop_slot = gr.Column(scale=1, min_width=80)
            with gr.Column(scale=1):
                # Redrawn at every change of the level or the mode: the level is found here, then Denoise runs
                # the whole image at it.
                preview = gr.ImageSlider(label=f"Preview at 100%: {PREVIEW_SIDE} px of the result around the point "
                                         "you click on the upload (drag the handle)", type="pil", format="png",
                                         interactive=False, elem_classes=[PIXELATED], max_height=520,
                                         buttons=["fullscreen"], elem_id="denoise-preview")
                preview_notes = gr.Markdown(elem_classes=["studio-notes"], elem_id="denoise-preview-notes")
                estimate = gr.Markdown(label="noise estimate", elem_id="denoise-noise-estimate")  # named so in the API
                out = result_outputs("Denoised", columns=2, before_after="denoise")

    @guarded
    def add_noise(image: str | None, noise_sigma: float, noise_seed: float, model_name: str,
                  kind: str | None = "white") -> tuple[Any, ...]:
        path, notes = studio.add_noise(model_name, image, noise_sigma, noise_seed, kind)
        return path, "\n".join(f"- {n}" for n in notes)

    @guarded
    def denoise(image: str | None, use_override: bool, sigma: float, refine: float, seed: float, mode: str,
                model_name: str, style_name: str, request: gr.Request,
                progress: gr.Progress = gr.Progress()) -> tuple[Any, ...]:
        result = studio.denoise(model_name, style_name, image, sigma if use_override else None, refine, seed,
                                progress_callback(progress, "denoising", studio.cancels.watch(session(request))),
                                mode=mode)
        measured = f" (x {result.scale:.2f} measured on the upload: see the notes)" if result.scale != 1 else ""
        if result.curve:  # a camera's noise: its level depends on the value (editing.noise.NoiseCurve)
            darkest, brightest = result.curve[0][1], result.curve[-1][1]
            summary = (f"**Estimated noise sigma: {darkest:.4f} in the shadows to {brightest:.4f} in the highlights** "
                       f"(mean {result.estimated:.4f}) · denoised variance-stabilized at {result.used:.4f}{measured}")
        else:
            summary = f"**Estimated noise sigma: {result.estimated:.4f}** · used: {result.used:.4f}{measured}"
        return summary, *out.values(result)

    @guarded
    def denoise_preview(image: str | None, copy: str | None, source: str, point: list[float] | None,
                        use_override: bool, level: float, refine: float, seed: float, mode: str, model_name: str,
                        style_name: str) -> tuple[Any, ...]:
        on_copy = source == "copy" and bool(copy)
        shown_image = copy if on_copy else image
        if not shown_image:  # nothing uploaded (or cleared): no preview
            return None, "", gr.skip()
        shown = studio.denoise_preview(model_name, style_name, shown_image, level if use_override else None, refine,
                                       seed, point, mode=mode)
        top, left = shown.window.top, shown.window.left
        of, button = ("the noisy copy", "**Denoise the noisy copy**") if on_copy else ("the upload", "**Denoise**")
        where = (f"**Preview** of {of}: {shown.window.width}x{shown.window.height} px of the result from ({left}, "
                 f"{top}), at sigma {shown.used:.4f}{' (yours)' if use_override else ''}. Click {of} to look "
                 f"elsewhere; {button} runs the whole image.")
        notes = "\n".join([where, *(f"- {n}" for n in shown.notes)])
        # Until the level is set by hand, the slider follows the level used, so ticking the box starts from it (within
        # its range: a clean image's level is 0).
        follow = gr.skip() if use_override else gr.Slider(
            value=min(max(round(shown.level, 3), sigma.minimum), sigma.maximum))
        return (shown.before, shown.after), notes, follow

    def clicked(source: str) -> Any:
        def on_select(event: gr.SelectData) -> tuple[str, Any]:
            return source, event.index  # checked where it is used (Studio.denoise_preview)
        return on_select

    # Which image the preview shows: the upload, or the noisy copy from when one is made until the upload changes
    # or is clicked; and the point clicked on it, (x, y) in its own pixels (None: its centre).
    source, point = gr.State("upload"), gr.State(None)
    made = add.click(add_noise, inputs=[image, noise_sigma, noise_seed, model, noise_kind], outputs=[noisy, estimate],
                     api_name="add_noise")
    override.change(lambda on: gr.Slider(interactive=bool(on)), inputs=override, outputs=sigma,
                    api_name="denoise_override", api_visibility=UNDOCUMENTED, show_progress="hidden")
    inputs = [override, sigma, refine, seed, mode, model, style]
    outputs = [estimate, *out.as_list()]
    running = run.click(denoise, inputs=[image, *inputs], outputs=outputs, api_name="denoise")
    running_copy = run_noisy.click(denoise, inputs=[noisy, *inputs], outputs=outputs, api_name="denoise_noisy_copy",
                                   api_visibility=UNDOCUMENTED)
    with stop_slot:
        stop_button(studio, "denoise", running, running_copy)
    preview_options: dict[str, Any] = dict(
        inputs=[image, noisy, source, point, *inputs], outputs=[preview, preview_notes, sigma],
        trigger_mode="always_last", show_progress="minimal", concurrency_id="denoise_preview", concurrency_limit=1)
    cleared = image.change(lambda: (None, None, "upload", None), outputs=[out.slider, noisy, source, point],
                           api_name="denoise_clear", api_visibility=UNDOCUMENTED, show_progress="hidden")
    cleared.then(denoise_preview, api_name="denoise_preview", api_visibility=UNDOCUMENTED, **preview_options)
    made.success(lambda: ("copy", None), outputs=[source, point], api_visibility=UNDOCUMENTED,
                 show_progress="hidden").then(denoise_preview, api_visibility=UNDOCUMENTED, **preview_options)
    for shown, name in ((image, "upload"), (noisy, "copy")):
        shown.select(clicked(name), outputs=[source, point], api_visibility=UNDOCUMENTED, show_progress="hidden").then(
            denoise_preview, api_visibility=UNDOCUMENTED, **preview_options)
    gr.on([override.change, sigma.release, mode.change, refine.release, model.change], denoise_preview,
          api_visibility=UNDOCUMENTED, **preview_options)
