"""Example uploads from app/examples under an input."""

from __future__ import annotations

import gradio as gr


def examples(paths: list[str], inputs: list[gr.components.Component], label: str = "Held-out examples") -> None:
    """Example uploads from app/examples (omitted when there are none)."""
    if paths:
        gr.Examples(examples=[[p] * len(inputs) for p in paths], inputs=inputs, label=label,
                    cache_examples=False, examples_per_page=12)
