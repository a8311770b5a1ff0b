"""The studio's example uploads: exported from held-out images only, noisy copies at the noise they name, and the
shipped ones credited and held out."""

from __future__ import annotations

import json
import re
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from app.export_examples import NOISY_PHOTO_PICKS, PHOTO_PICKS, export_photo_examples
from app.tabs.examples import EXAMPLES_DIR, ExampleSets
from training.photos import Photo

ROOT = Path(__file__).resolve().parent.parent


def fake_photo_data(folder: Path, heldout: set[str]) -> Path:
    """A data/photos-like folder with every picked photo, held out or not as asked; flat grey pixels (so that the
    noise a noisy copy carries is all that varies)."""
    (folder / "photos").mkdir(parents=True)
    ids = sorted({i for i, _ in PHOTO_PICKS} | {i for i, *_ in NOISY_PHOTO_PICKS})
    with open(folder / "manifest.jsonl", "w") as manifest:
        for i in ids:
            Image.fromarray(np.full((300, 400, 3), 128, np.uint8)).save(folder / "photos" / f"{i}.png")
            photo = Photo(i, "pkg", "1.0", f"usr/share/{i}.webp", 400, 300, "Public Domain", f"author of {i}",
                          f"https://example.org/{i}", "heldout" if i in heldout else "train")
            manifest.write(json.dumps(asdict(photo)) + "\n")
    return folder


def test_only_held_out_photos_are_exported_and_credited(tmp_path: Path) -> None:
    kept = {PHOTO_PICKS[0][0], NOISY_PHOTO_PICKS[0][0]}
    out = tmp_path / "examples"
    written = export_photo_examples(fake_photo_data(tmp_path / "photos", kept), out)
    sets = ExampleSets.from_folder(out)
    assert sorted(written) == sorted(Path(p) for p in sets.photos + sets.noisy_photos)
    assert sorted(Path(p).stem for p in sets.photos) == sorted(stem for i, stem in PHOTO_PICKS if i in kept)
    assert sorted(Path(p).stem for p in sets.noisy_photos) == sorted(stem for i, stem, *_ in NOISY_PHOTO_PICKS
                                                                     if i in kept)
    for folder, paths in ((out / "photos", sets.photos), (out / "noisy-photos", sets.noisy_photos)):
        credits = (folder / "CREDITS.md").read_text()
        rows = [line for line in credits.splitlines() if line.startswith("| `")]
        assert len(rows) == len(paths)
        for path in paths:
            row = next(row for row in rows if row.startswith(f"| `{Path(path).name}` |"))
            assert "Public Domain" in row and "author of" in row


def test_a_noisy_copy_carries_the_noise_it_names(tmp_path: Path) -> None:
    ids = {i for i, *_ in NOISY_PHOTO_PICKS}
    export_photo_examples(fake_photo_data(tmp_path / "photos", ids), tmp_path / "examples")
    for _, stem, sigma, width in NOISY_PHOTO_PICKS:
        pixels = np.asarray(Image.open(tmp_path / "examples" / "noisy-photos" / f"{stem}.jpg"), np.float64)
        assert pixels.shape == (round(300 * width / 400), width, 3)
        # On flat grey the deviation is the noise's. Measured along luma, which JPEG keeps at full resolution (its
        # 4:2:0 chroma halves the rest); per unit of luma weight, white noise of sigma reads sigma.
        luma = np.array([0.299, 0.587, 0.114])
        along_luma = (pixels @ luma).std() / np.linalg.norm(luma)
        assert 0.9 * sigma < along_luma < 1.15 * sigma, (stem, along_luma)
        assert abs(pixels.mean() - 128) < 1.0


def test_nothing_is_written_without_the_data(tmp_path: Path) -> None:
    assert export_photo_examples(tmp_path / "missing", tmp_path / "examples") == []
    assert not (tmp_path / "examples").exists()


@pytest.mark.parametrize("kind", ["photos", "noisy-photos"])
def test_the_shipped_example_photos_are_held_out_and_credited(kind: str) -> None:
    """Each shipped example photograph is credited beside it, and held out in the photo models' own credits."""
    files = sorted((EXAMPLES_DIR / kind).glob("*.jpg"))
    assert files
    credits = (EXAMPLES_DIR / kind / "CREDITS.md").read_text()
    splits = dict(re.findall(r"^\| (\S+) \| (train|heldout) \|", (ROOT / "weights/photo64-edm/PHOTO_CREDITS.md")
                             .read_text(), re.MULTILINE))
    for path in files:
        row = next(line for line in credits.splitlines() if line.startswith(f"| `{path.name}` |"))
        photo_id = row.split("|")[2].strip()
        assert splits[photo_id] == "heldout", path.name
        assert path.stat().st_size < 400_000, path.name
