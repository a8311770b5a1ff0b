"""Export a few held-out emoji from the training data as the studio's examples (app/examples/*.png).

    python -m app.export_examples [--data data/emoji32] [--out app/examples]

Held-out images (split == "heldout" in index.jsonl) were never seen in training, so edits on them are fair.
Without the data folder nothing is written and the studio simply shows no examples.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from PIL import Image

from training.data import read_folder

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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=Path("data/emoji32"))
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "examples")
    args = parser.parse_args()
    written = export_examples(args.data, args.out)
    print("\n".join(str(p) for p in written) or f"no held-out data under {args.data}: nothing written")


if __name__ == "__main__":
    main()
