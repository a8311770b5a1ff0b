"""Export a few held-out images of the training data as the studio's examples: emoji (app/examples/*.png) for the
square models, photographs (app/examples/photos/*.jpg, and noisy copies in app/examples/noisy-photos/) for the tiled
photo models.

    python -m app.export_examples [--data data/emoji32] [--photos data/photos] [--out app/examples]

Held-out images (split == "heldout" in index.jsonl or manifest.jsonl) were never seen in training, so edits on them
are fair. Without a data folder nothing is written from it and the studio shows no examples of that kind.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from training.data import read_folder
from training.photos import Photo, read_manifest

# (emoji identity, style, file stem): a face, a fruit, an animal, a flower, a vehicle, a symbol; all three styles.
PICKS = (
    ("1f600", "twemoji", "grinning-face-twemoji"),
    ("1f34d", "noto", "pineapple-noto"),
    ("1f993", "fluent3d", "zebra-fluent3d"),
    ("1f338", "twemoji", "cherry-blossom-twemoji"),
    ("1f6f8", "noto", "flying-saucer-noto"),
    ("2b50", "fluent3d", "star-fluent3d"),
)


def export_examples(data: Path, out: Path) -> list[Path]:
    """Write the PICKS found among the held-out images of `data` to `out`; returns the files written."""
    index_path, images_path = data / "index.jsonl", data / "images.npy"
    if not index_path.is_file() or not images_path.is_file():
        return []
    pixels, rows = read_folder(data)
    where = {(r["identity"], r["style"]): i for i, r in reversed(list(enumerate(rows))) if r.get("split") == "heldout"}
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for identity, style, stem in PICKS:
        if (identity, style) in where:
            path = out / f"{stem}.png"
            Image.fromarray(np.asarray(pixels[where[identity, style]], dtype=np.uint8)).save(path, optimize=True)
            written.append(path)
    return written


# Held-out public-domain photographs (data/photos, split == "heldout"), at their packaged size (at most 1024 px):
# a pyramid on sand to erase, a grey photo to colorize, stone, water, fur and foliage.
PHOTO_PICKS = (
    ("gcompris_explore_monuments_redPyramid", "red-pyramid"),
    ("gcompris_explore_monuments_castleClinton", "castle-clinton-grey"),
    ("gcompris_explore_monuments_pontduGard", "pont-du-gard"),
    ("gcompris_explore_world_animals_moose", "moose"),
    ("gcompris_explore_farm_animals_dog", "dog"),
    ("gcompris_explore_monuments_konarkSunTemple", "konark-sun-temple"),
)
# Noisy copies for Denoise, saved as a phone or camera would (JPEG): (photo, file stem, sigma of 255, width).
NOISY_PHOTO_PICKS = (
    ("gcompris_explore_farm_animals_dog", "dog-noise15", 15.0, 800),
    ("gcompris_explore_world_animals_moose", "moose-noise25", 25.0, 800),
)
PHOTO_QUALITY = 90  # JPEG quality of the exported photos (their sources are lossy WebP already)


def export_photo_examples(data: Path, out: Path, seed: int = 0) -> list[Path]:
    """Write the PHOTO_PICKS and NOISY_PHOTO_PICKS found among the held-out photos of `data` to out/photos and
    out/noisy-photos, with a CREDITS.md in each naming every photo's licence, author and source; returns the
    photos written. The noise is Gaussian, drawn from `seed`, added at the given width and quantized to 8 bits."""
    if not (data / "manifest.jsonl").is_file():
        return []
    heldout = {p.id: p for p in read_manifest(data) if p.split == "heldout"}
    written: list[Path] = []

    def export(folder: Path, picks: list[tuple[Photo, str, np.ndarray]], changes: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        for _, stem, pixels in picks:
            path = folder / f"{stem}.jpg"
            Image.fromarray(pixels).save(path, quality=PHOTO_QUALITY, optimize=True)
            written.append(path)
        (folder / "CREDITS.md").write_text(photo_credits([(photo, f"{stem}.jpg") for photo, stem, _ in picks],
                                                         changes))

    def read(photo: Photo) -> Image.Image:
        return Image.open(data / "photos" / f"{photo.id}.png").convert("RGB")

    export(out / "photos", [(heldout[i], stem, np.asarray(read(heldout[i]))) for i, stem in PHOTO_PICKS
                            if i in heldout], f"re-encoded as JPEG (quality {PHOTO_QUALITY})")
    rng = np.random.default_rng(seed)
    noisy = []
    for i, stem, sigma, width in NOISY_PHOTO_PICKS:
        if i in heldout:
            image = read(heldout[i])
            image = image.resize((width, round(image.height * width / image.width)), Image.Resampling.LANCZOS)
            pixels = np.asarray(image, dtype=np.float64) + rng.normal(0.0, sigma, (image.height, image.width, 3))
            noisy.append((heldout[i], stem, np.clip(np.round(pixels), 0, 255).astype(np.uint8)))
    widths = " or ".join(sorted({str(w) for *_, w in NOISY_PHOTO_PICKS}))
    export(out / "noisy-photos", noisy, f"resized (Lanczos) to {widths} px wide, Gaussian noise of the sigma in the "
           f"file's name (of 255) added, re-encoded as JPEG (quality {PHOTO_QUALITY})")
    return written


def photo_credits(files: list[tuple[Photo, str]], changes: str) -> str:
    """The credits of exported example photographs: each file's photo, licence, author and source."""
    lines = ["# Example photographs: credits", "",
             "Held-out photographs of the photo models' data (`split == \"heldout\"` in `data/photos/manifest.jsonl`: "
             f"never trained on), exported by `python -m app.export_examples`; changes: {changes}.", "",
             "| file | photo | licence | author / copyright | source |", "|---|---|---|---|---|"]
    lines += [f"| `{name}` | {p.id} | {p.licence} | {p.credit} | {p.source_url} (`{p.package}` {p.version}: "
              f"`{p.path}`) |" for p, name in files]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/emoji32"), help="the emoji data (training.data)")
    parser.add_argument("--photos", type=Path, default=Path("data/photos"), help="the photo data (training.photos)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "examples")
    args = parser.parse_args()
    for data, written in ((args.data, export_examples(args.data, args.out)),
                          (args.photos, export_photo_examples(args.photos, args.out))):
        print("\n".join(str(p) for p in written) or f"no held-out data under {data}: nothing written")


if __name__ == "__main__":
    main()
