"""A tab's result widgets: the gallery, its notes and the downloads."""

from __future__ import annotations

from dataclasses import dataclass

import gradio as gr

PIXELATED = "pixelated"  # CSS class: show small images big and crisp


@dataclass
class Outputs:
    """A tab's result widgets: gallery of enlarged images with captions, notes, downloads."""

    gallery: gr.Gallery
    notes: gr.Markdown
    files: gr.File

    def as_list(self) -> list[gr.components.Component]:
        return [self.gallery, self.notes, self.files]


def result_outputs(label: str = "Results", columns: int = 4) -> Outputs:
    # "fit-content": the gallery grows to show every result (Gradio's "auto" is a fixed 55vh box that scrolls).
    gallery = gr.Gallery(label=label, columns=columns, height="fit-content", object_fit="contain", format="png",
                         elem_classes=[PIXELATED], interactive=False, buttons=["download", "fullscreen"])
    notes = gr.Markdown(elem_classes=["studio-notes"])
    # A batch gives two files per image: cap the list's height (it scrolls) so it does not push the page down.
    files = gr.File(label="Downloads (PNG at model resolution, and enlarged)", file_count="multiple",
                    interactive=False, height=220)
    return Outputs(gallery, notes, files)
