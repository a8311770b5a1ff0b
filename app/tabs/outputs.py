"""A tab's result widgets: the gallery, its notes, the downloads and, for an edit, a before/after slider; and
the Stop button that ends a running request."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import gradio as gr

if TYPE_CHECKING:
    from app.request import Result
    from app.studio import Studio

PIXELATED = "pixelated"  # CSS class: show small images big and crisp


@dataclass
class Outputs:
    """A tab's result widgets: gallery (small results enlarged) with captions, notes, downloads, and for an edit
    the input beside the first result on a slider."""

    gallery: gr.Gallery
    notes: gr.Markdown
    files: gr.File
    slider: gr.ImageSlider | None = None

    def as_list(self) -> list[gr.components.Component]:
        return [self.gallery, self.notes, self.files] + ([self.slider] if self.slider is not None else [])

    def values(self, result: Result) -> tuple[Any, ...]:
        """What the widgets of `as_list` show for a result."""
        shown = (result.gallery(), result.notes_markdown(), result.files)
        return shown + ((result.before_after(),) if self.slider is not None else ())


def result_outputs(label: str = "Results", columns: int = 4, before_after: str | None = None) -> Outputs:
    """`before_after`: the tab's name, for a before/after slider (elem_id "<tab>-slider")."""
    slider = None
    if before_after:
        # max_height, not height: a fixed height makes Gradio zoom both images to fill it, cropping them.
        slider = gr.ImageSlider(label="Before / after (drag the handle)", type="filepath", format="png",
                                interactive=False, elem_classes=[PIXELATED], max_height=520,
                                buttons=["download", "fullscreen"], elem_id=f"{before_after}-slider")
    # "fit-content": the gallery grows to show every result (Gradio's "auto" is a fixed 55vh box that scrolls).
    gallery = gr.Gallery(label=label, columns=columns, height="fit-content", object_fit="contain", format="png",
                         elem_classes=[PIXELATED], interactive=False, buttons=["download", "fullscreen"])
    notes = gr.Markdown(label="notes", elem_classes=["studio-notes"])  # named so in the HTTP API
    # Several results come with one zip of them all, first in the list; the list scrolls past a few files.
    files = gr.File(label="Downloads (full size: PNG with the upload's transparency, JPEG for photos; "
                    "a zip of all)", file_count="multiple", interactive=False, height=220)
    return Outputs(gallery, notes, files, slider)


def stop_button(studio: Studio, tab: str, *events: Any) -> gr.Button:
    """A Stop button: the running request of this browser session stops at its next network call (app.progress
    .Cancels), and Gradio drops its pending reply."""
    stop = gr.Button("Stop", variant="stop", size="sm")

    def press(request: gr.Request) -> None:
        studio.cancels.press(getattr(request, "session_hash", None))

    stop.click(press, cancels=list(events), api_name=f"{tab}_stop", api_visibility="undocumented",
               show_progress="hidden", concurrency_limit=None)  # never waits behind the work it stops
    return stop


def time_estimate(studio: Studio, tab: str, inputs: list[Any], estimate: Any) -> gr.Markdown:
    """A line above a tab's run button with the request's size and estimated time (Studio.estimate), kept up to
    date as its `inputs` change; `estimate(*values)` returns the text."""
    line = gr.Markdown(elem_classes=["studio-estimate"], elem_id=f"{tab}-estimate")
    gr.on([i.change for i in inputs], estimate, inputs=inputs, outputs=line, api_name=f"{tab}_estimate",
          api_visibility="undocumented", show_progress="hidden")
    return line
