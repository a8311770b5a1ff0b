"""The photo cards' before/after figure: one row per edit, and the edit's output keeps what the input determines."""

from __future__ import annotations

from pathlib import Path

import numpy as np

import training.photo_figures as figures
from editing.models import load_model, resolve_runtime
from tests.conftest import make_tiny_folder
from tests.test_benchmarks_photos import make_photos

GIVEN = ("noisy 25/255", "x4 block means", "centre box", "luma")  # one row per edit


def panel(figure: np.ndarray, row: int, column: int) -> np.ndarray:
    """One CROP x CROP image of `labelled_row`'s layout: a 16 px caption band above, 4 px between images."""
    crop = figures.CROP
    y, x = row * (crop + 16) + 16, column * (crop + 4)
    return figure[y:y + crop, x:x + crop].astype(np.float64)


def test_edit_crops_shows_every_edit_and_its_output_keeps_the_block_means(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(figures, "cbm3d", lambda noisy, sigma: noisy.clamp(-1, 1))  # its own test covers CBM3D
    teacher = load_model(make_tiny_folder(tmp_path / "edm", classes=(), boundary="edm", tiled=True),
                         resolve_runtime("cpu"))
    captions: list[str] = []
    real_row = figures.labelled_row

    def recording_row(images: list[np.ndarray], labels: list[str], scale: int = 1):
        captions.extend(labels)
        return real_row(images, labels, scale)

    monkeypatch.setattr(figures, "labelled_row", recording_row)
    figure = np.asarray(figures.edit_crops(teacher, "teacher's D", make_photos(tmp_path / "photos", size=140), 1))

    crop = figures.CROP
    assert figure.shape == (len(GIVEN) * (crop + 16), 4 * (crop + 4), 3)
    assert captions[1::4] == list(GIVEN)
    assert [c.split(":")[0] for c in captions[3::4]] == ["teacher's D"] * len(GIVEN)
    # Algorithm 4 keeps A x = A y: the super-resolved panel's 4x4 block means are the truth's, to 8-bit rounding
    truth, super_resolved = panel(figure, 1, 0), panel(figure, 1, 3)
    block_means = [p.reshape(crop // 4, 4, crop // 4, 4, 3).mean((1, 3)) for p in (truth, super_resolved)]
    assert np.abs(block_means[0] - block_means[1]).max() <= 1.0
    assert np.abs(truth - super_resolved).max() > 1.0  # the detail inside each block is the model's
    # inpainting keeps every pixel outside the box
    box = figures.centre_box(1, crop)[0, 0].numpy()
    assert np.abs(panel(figure, 2, 0) - panel(figure, 2, 3))[~box].max() <= 1.0
