"""Assemble the studio's page: a model and style picker above one tab per task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gradio as gr
from starlette.middleware import Middleware

from app.guard import Guard, GuardLimits, bind_sessions
from app.request import ENLARGED
from app.tabs import colorize, compare, denoise, generate, inpaint, interpolate, stroke_edit, superresolve
from app.tabs.examples import ExampleGalleries, ExampleSets
from app.tabs.inputs import UNDOCUMENTED
from editing.images import MAX_BYTES

if TYPE_CHECKING:
    from app.studio import Studio

TABS = (generate, inpaint, colorize, superresolve, stroke_edit, interpolate, denoise, compare)
CSS = """
.pixelated img.small-image, .pixelated canvas { image-rendering: pixelated; image-rendering: crisp-edges; }
.studio-upload img { width: 100%; height: 100%; object-fit: contain; }
.studio-upload .unviewable img { display: none; }
.studio-upload .unviewable::after { content: "This browser cannot show this file (a HEIC or a TIFF, say); the studio \
reads it, and the result shows it."; display: flex; align-items: center; justify-content: center; height: 100%;
  padding: 1em; text-align: center; color: var(--body-text-color-subdued); }
.studio-notes ul { margin-top: 0; }
/* Gallery tiles may shrink below Gradio's 100px minimum: on a narrow window every column stays on screen. */
.pixelated .grid-container { grid-template-columns: repeat(var(--grid-cols), minmax(0, 1fr)); }
/* Stroke edit on a narrow window: the result right under the canvas and its buttons, the settings after it. */
@media (max-width: 720px) {
  #stroke-left { display: contents; }
  #stroke-left > * { order: 2; flex: 1 1 100%; }
  #stroke-left > #stroke-canvas, #stroke-left > #stroke-actions { order: 0; }
  #stroke-right { order: 1; flex: 1 1 100%; }
}
"""
MAX_FILE_SIZE = MAX_BYTES  # a file the browser may upload: what the engine (and the CLI) reads

# Nearest-neighbour rendering keeps a small image crisp when it is shown enlarged, but a photo shown smaller than
# its size would be subsampled: its grain and fine texture alias into the preview (a noisy upload looks noisier than
# it is, and the before/after misleads). So only small images (their own size, read when each one loads) are
# pixelated: the enlarged views of small results (app.request.ENLARGED) and small uploads; the browser's smooth
# scaling shows the rest. An upload the browser cannot draw (a HEIC in Chrome, a TIFF) still reaches the engine,
# which reads it: its box says so instead of showing a broken image.
JS = """() => {
  const mark = (img) => img.classList.toggle('small-image',
    img.naturalWidth > 0 && img.naturalWidth <= %d && img.naturalHeight <= %d);
  const upload = (img) => img instanceof HTMLImageElement && img.closest('.studio-upload') ? img.parentElement : null;
  document.addEventListener('load', (event) => {
    if (event.target instanceof HTMLImageElement) mark(event.target);
    upload(event.target)?.classList.remove('unviewable');
  }, true);
  document.addEventListener('error', (event) => upload(event.target)?.classList.add('unviewable'), true);
  document.querySelectorAll('img').forEach((img) => { if (img.complete) mark(img); });
}""" % (ENLARGED, ENLARGED)


def build_demo(studio: Studio, examples: ExampleSets | None = None) -> gr.Blocks:
    """The whole page; nothing is loaded here beyond what `studio` already holds. `examples`: the uploads offered
    under the inputs (default: those shipped in app/examples)."""
    default = studio.default_model
    galleries = ExampleGalleries(ExampleSets.from_folder() if examples is None else examples,
                                 tiled=studio.entry(default).param.tiled)
    with gr.Blocks(title="Consistency Studio", delete_cache=(900, 3600), analytics_enabled=False) as demo:
        gr.Markdown("# Consistency Studio\nEdit images with a consistency model (Song et al. 2023) in 1-18 "
                    "network evaluations: every edit is the paper's Algorithm 4 with a different operator.")
        with gr.Row(equal_height=True):
            # Custom values are allowed so that the studio (not the widget) checks them, with a clearer message.
            model = gr.Dropdown(studio.model_names, value=default, label="Model", scale=2, allow_custom_value=True)
            style = gr.Dropdown(studio.styles(default), value=studio.styles(default)[0], label="Style (class)",
                                scale=2, allow_custom_value=True)
            with gr.Column(scale=1, min_width=240):  # wraps below the dropdowns on a narrow window
                info = gr.Markdown(studio.describe(default))
        with gr.Tabs():
            for tab in TABS:
                tab.create_tab(studio, model, style, galleries)

        def select_model(name: str) -> tuple[Any, ...]:
            """The chosen model's styles, description and examples (photos for a photo model); a name typed that
            is no model gets a note in place of the description (the rest is left as it is), never an error."""
            try:
                styles = studio.styles(name)
            except ValueError:
                return gr.skip(), unknown_model_note(studio, name), *[gr.skip()] * len(galleries.components)
            return (gr.Dropdown(choices=styles, value=styles[0]), studio.describe(name),
                    *galleries.shown_for(studio.entry(name).param.tiled))

        model.change(select_model, inputs=model, outputs=[style, info, *galleries.components], api_name="select_model",
                     api_visibility=UNDOCUMENTED)
    return demo


def unknown_model_note(studio: Studio, name: Any) -> str:
    shown = str(name)[:60]
    return (f"**No model named {shown!r}.** Choose one of {', '.join(f'`{m}`' for m in studio.model_names)} "
            "from the list.")


def concurrency_limit(device_type: str) -> int:
    """Requests run at once: 2 on a CPU (more only thrash its cores), 4 on a GPU."""
    return 4 if device_type == "cuda" else 2


def launch(demo: gr.Blocks, studio: Studio, host: str = "127.0.0.1", port: int | None = 7860,
           guard: GuardLimits | None = None, **kwargs: Any) -> Any:
    """Queue with a device-sized concurrency limit and a bounded size, an upload limit and the guard
    (app.guard: per-client shares, body, upload and file-reference checks) in front of Gradio's routes, then serve."""
    demo.queue(default_concurrency_limit=concurrency_limit(studio.runtime.device.type), max_size=64)
    bind_sessions(demo)
    middleware = [Middleware(Guard, demo=demo, limits=guard or GuardLimits())]
    return demo.launch(server_name=host, server_port=port, max_file_size=MAX_FILE_SIZE, css=CSS, js=JS,
                       show_error=False, ssr_mode=False, footer_links=["api"], app_kwargs={"middleware": middleware},
                       **kwargs)
