"""Example uploads from app/examples under the tabs' inputs: held-out emoji for the square models, held-out
photographs for the tiled (photo) ones; the galleries of the chosen model's kind are shown, the others hidden."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gradio as gr

EXAMPLES_DIR = Path(__file__).parent.parent / "examples"


@dataclass(frozen=True)
class ExampleSets:
    """File paths of the shipped examples (any list may be empty: its galleries are then omitted)."""

    emoji: list[str] = field(default_factory=list)  # app/examples/*.png: 32 px held-out emoji
    photos: list[str] = field(default_factory=list)  # app/examples/photos/*.jpg: held-out photographs
    noisy_photos: list[str] = field(default_factory=list)  # app/examples/noisy-photos/*.jpg: noisy copies

    @classmethod
    def from_folder(cls, folder: Path = EXAMPLES_DIR) -> ExampleSets:
        def files(sub: Path, pattern: str) -> list[str]:
            return [str(p) for p in sorted(sub.glob(pattern))] if sub.is_dir() else []

        return cls(files(folder, "*.png"), files(folder / "photos", "*.jpg"), files(folder / "noisy-photos", "*.jpg"))


class ExampleGalleries:
    """Builds the tabs' example galleries and remembers each one's kind, so that choosing a model shows the
    galleries of its kind only (`shown_for`)."""

    def __init__(self, sets: ExampleSets, tiled: bool) -> None:
        self.sets = sets
        self.tiled = tiled  # the kind the page opens on: the default model's
        self.datasets: list[tuple[gr.Dataset, bool]] = []  # each gallery, and whether it is for tiled models

    def under(self, inputs: list[gr.components.Component], photos: list[str] | None = None,
              label: str = "Held-out examples") -> None:
        """One upload per example, into every input; `photos` replaces the sets' photos (Denoise: noisy ones)."""
        for paths, tiled in ((self.sets.emoji, False), (self.sets.photos if photos is None else photos, True)):
            self.add([[p] * len(inputs) for p in paths], inputs, label, tiled, per_page=12)

    def pairs_under(self, inputs: list[gr.components.Component], label: str = "Held-out example pairs") -> None:
        """Pairs of neighbouring examples, one into each of two inputs (Interpolate)."""
        for paths, tiled in ((self.sets.emoji, False), (self.sets.photos, True)):
            if len(paths) >= 2:
                self.add([[a, b] for a, b in zip(paths, paths[1:] + paths[:1])], inputs, label, tiled, per_page=6)

    def add(self, rows: list[list[str]], inputs: list[gr.components.Component], label: str, tiled: bool,
            per_page: int) -> None:
        if rows:
            shown = gr.Examples(examples=rows, inputs=inputs, label=label, cache_examples=False,
                                examples_per_page=per_page, visible=tiled == self.tiled)
            self.datasets.append((shown.dataset, tiled))

    @property
    def components(self) -> list[gr.Dataset]:
        return [dataset for dataset, _ in self.datasets]

    def shown_for(self, tiled: bool) -> list[Any]:
        """Updates of every gallery: visible when it is of the chosen model's kind."""
        return [gr.Dataset(visible=kind == tiled) for _, kind in self.datasets]
