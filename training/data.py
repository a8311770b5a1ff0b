"""Build the emoji training set from pinned npm packages (issue: training data).

`python -m training.data build --out data/emoji32 --size 32` fetches the tarballs with `npm pack`,
checks their sha256, composites every image onto white, centre-pads to a square, area-resizes to
`size`, and writes `images.npy` (uint8, N x size x size x 3), `index.jsonl` (one record per image),
`DATA_CARD.md` and a contact sheet per style. Building twice gives identical bytes.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import subprocess
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterator

import numpy as np
from PIL import Image

from editing.images import load_image, to_uint8
from editing.models import sha256_file

SKIN_TONES = frozenset({"1f3fb", "1f3fc", "1f3fd", "1f3fe", "1f3ff"})
HELDOUT_PER_MILLE = 50  # ~5% of identities are held out, in every style


@dataclass(frozen=True)
class Source:
    """One pinned npm package of emoji art."""

    style: str
    package: str
    version: str
    sha256: str
    image_prefix: str  # member prefix inside the tarball, e.g. "package/img/twitter/64/"
    image_suffix: str
    licence: str
    attribution: str

    @property
    def tarball_name(self) -> str:
        # `npm pack @scope/name@v` writes `scope-name-v.tgz`.
        return f"{self.package.lstrip('@').replace('/', '-')}-{self.version}.tgz"


# The styles are the class labels of the conditional model, in this order.
SOURCES: tuple[Source, ...] = (
    Source(
        style="twemoji",
        package="emoji-datasource-twitter",
        version="16.0.0",
        sha256="f64a530c63bca463bd8317fdc4615ce63a53a0c65018e4ce2d848aaba7a28877",
        image_prefix="package/img/twitter/64/",
        image_suffix=".png",
        licence="CC-BY 4.0",
        attribution="Twemoji graphics by Twitter, Inc. and other contributors, licensed under CC-BY 4.0 "
        "(https://creativecommons.org/licenses/by/4.0/); taken from the npm package "
        "emoji-datasource-twitter 16.0.0 (iamcal/emoji-data). Resized to the model resolution and composited on white.",
    ),
    Source(
        style="noto",
        package="emoji-datasource-google",
        version="16.0.0",
        sha256="fb5fd131b362aab7a55542d2a147a79708cce0a8b1c1bbacd470172708b5c438",
        image_prefix="package/img/google/64/",
        image_suffix=".png",
        licence="Apache-2.0",
        attribution="Noto Emoji graphics, Copyright Google Inc., licensed under the Apache License 2.0; taken "
        "from the npm package emoji-datasource-google 16.0.0. Resized to the model resolution and composited on white.",
    ),
    Source(
        style="fluent3d",
        package="@lobehub/fluent-emoji-3d",
        version="1.1.0",
        sha256="c1bb7eee7de090205a232518a9ab4adb3df458bfbe8a1f78232991194c8b2e58",
        image_prefix="package/assets/",
        image_suffix=".webp",
        licence="MIT",
        attribution="Fluent Emoji 3D graphics, Copyright (c) Microsoft Corporation, MIT licence; packaged as "
        "@lobehub/fluent-emoji-3d 1.1.0 (Copyright (c) 2023 LobeHub, MIT). Resized and composited on white.",
    ),
)
STYLES: tuple[str, ...] = tuple(s.style for s in SOURCES)
CATEGORY_SOURCE = "package/emoji.json"  # in the emoji-datasource packages


class TarballHashError(RuntimeError):
    """A tarball's sha256 differs from the pinned value."""


@dataclass(frozen=True)
class Record:
    style: str
    codepoints: str  # e.g. "1f44d-1f3fb"
    identity: str  # codepoints with skin tones and variation selectors removed
    category: str
    source_file: str
    split: str  # "train" or "heldout"


def fetch(source: Source, cache_dir: Path) -> Path:
    """Return the verified tarball for `source`, running `npm pack` into `cache_dir` if absent."""
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = cache_dir / source.tarball_name
    if not path.exists():
        subprocess.run(
            ["npm", "pack", f"{source.package}@{source.version}", "--pack-destination", str(cache_dir)],
            check=True,
            capture_output=True,
        )
    actual = sha256_file(path)
    if actual != source.sha256:
        raise TarballHashError(
            f"{path}: sha256 is {actual}, expected {source.sha256} for {source.package}@{source.version}. "
            "Delete the file to fetch it again, or check the pinned version."
        )
    return path


def identity_of(codepoints: str) -> str:
    """The emoji identity: its codepoints less skin-tone modifiers and variation selector 16."""
    parts = [p for p in codepoints.lower().split("-") if p not in SKIN_TONES and p != "fe0f"]
    return "-".join(parts)


def split_of(identity: str) -> str:
    """Deterministic identity-level split: a hash of the identity, so all styles agree."""
    bucket = int.from_bytes(hashlib.sha256(identity.encode()).digest()[:4], "big") % 1000
    return "heldout" if bucket < HELDOUT_PER_MILLE else "train"


def categories_from(emoji_json: list[dict]) -> dict[str, str]:
    """Map identity -> category from emoji-datasource's emoji.json (variants share their base's)."""
    out: dict[str, str] = {}
    for entry in emoji_json:
        out[identity_of(entry["unified"])] = entry["category"]
        for variant in (entry.get("skin_variations") or {}).values():
            out.setdefault(identity_of(variant["unified"]), entry["category"])
    return out


def to_square_rgb(image: Image.Image, size: int) -> np.ndarray:
    """An emoji as the studio reads an upload (editing.images.load_image: composited on white, centre-padded
    to a square, exact area means), rounded to uint8 HxWx3, so training and editing see the same geometry."""
    return to_uint8(load_image(image, size).tensor)[0]


def read_folder(folder: Path) -> tuple[np.ndarray, list[dict]]:
    """A data folder (this module's or training.photos' output): images.npy memory-mapped (uint8 N x H x W x 3)
    and its index.jsonl records, one per image."""
    images = np.load(folder / "images.npy", mmap_mode="r")
    records = [json.loads(line) for line in (folder / "index.jsonl").read_text().splitlines() if line.strip()]
    if len(records) != len(images):
        raise ValueError(f"{folder}: {len(images)} images but {len(records)} index records")
    return images, records


def iter_members(tarball: Path, source: Source) -> Iterator[tuple[str, bytes]]:
    """Yield (member name, bytes) of the source's images, sorted by name for determinism."""
    with tarfile.open(tarball, "r:gz") as tar:
        members = [
            m
            for m in tar.getmembers()
            if m.isfile() and m.name.startswith(source.image_prefix) and m.name.endswith(source.image_suffix)
        ]
        for member in sorted(members, key=lambda m: m.name):
            data = tar.extractfile(member)
            assert data is not None
            yield member.name, data.read()


def read_categories(tarball: Path) -> dict[str, str]:
    with tarfile.open(tarball, "r:gz") as tar:
        try:
            data = tar.extractfile(CATEGORY_SOURCE)
        except KeyError:
            return {}
        assert data is not None
        return categories_from(json.load(data))


def build(sources: tuple[Source, ...], cache_dir: Path, out_dir: Path, size: int) -> list[Record]:
    """Build images.npy, index.jsonl, DATA_CARD.md and contact sheets in `out_dir`."""
    if size not in (16, 32, 64, 128, 256):
        raise ValueError(f"size must be one of 16, 32, 64, 128, 256, got {size}")
    tarballs = {s.style: fetch(s, cache_dir) for s in sources}
    categories: dict[str, str] = {}
    for source in sources:
        for key, value in read_categories(tarballs[source.style]).items():
            categories.setdefault(key, value)

    images: list[np.ndarray] = []
    records: list[Record] = []
    for source in sources:
        for name, data in iter_members(tarballs[source.style], source):
            codepoints = Path(name).name[: -len(source.image_suffix)].lower()
            identity = identity_of(codepoints)
            with Image.open(io.BytesIO(data)) as image:
                images.append(to_square_rgb(image, size))
            records.append(
                Record(
                    style=source.style,
                    codepoints=codepoints,
                    identity=identity,
                    category=categories.get(identity, "unknown"),
                    source_file=f"{source.package}@{source.version}:{name}",
                    split=split_of(identity),
                )
            )
    if not records:
        raise ValueError("no images found in the given sources")

    out_dir.mkdir(parents=True, exist_ok=True)
    array = np.stack(images)
    np.save(out_dir / "images.npy", array)
    with open(out_dir / "index.jsonl", "w") as f:
        for record in records:
            f.write(json.dumps(asdict(record), sort_keys=True) + "\n")
    for source in sources:
        rows = [i for i, r in enumerate(records) if r.style == source.style]
        rows = rows[:: max(1, len(rows) // 400)][:400]  # evenly spaced: every category shows
        contact_sheet(array[rows]).save(out_dir / f"contact_{source.style}.png")
    (out_dir / "DATA_CARD.md").write_text(data_card(sources, records, size, sha256_file(out_dir / "images.npy")))
    return records


def contact_sheet(images: np.ndarray, columns: int = 20) -> Image.Image:
    """Tile uint8 NxHxWx3 images into one grid image."""
    n, h, w, _ = images.shape
    rows = (n + columns - 1) // columns
    sheet = np.full((rows * h, columns * w, 3), 255, dtype=np.uint8)
    for i, image in enumerate(images):
        r, c = divmod(i, columns)
        sheet[r * h : (r + 1) * h, c * w : (c + 1) * w] = image
    return Image.fromarray(sheet)


def data_card(sources: tuple[Source, ...], records: list[Record], size: int, images_sha256: str) -> str:
    lines = [
        "# Emoji training data",
        "",
        f"Built by `python -m training.data build --size {size}` from pinned npm packages. "
        f"Images: {len(records)} at {size}x{size} RGB, composited on white. `images.npy` sha256: `{images_sha256}`.",
        "",
        "| style | package | licence | train | heldout |",
        "|---|---|---|---|---|",
    ]
    for s in sources:
        train = sum(r.style == s.style and r.split == "train" for r in records)
        held = sum(r.style == s.style and r.split == "heldout" for r in records)
        lines.append(f"| {s.style} | {s.package}@{s.version} | {s.licence} | {train} | {held} |")
    identities = {r.identity for r in records}
    held_ids = {r.identity for r in records if r.split == "heldout"}
    lines += [
        "",
        f"Split by emoji identity (skin tones folded): {len(held_ids)} of {len(identities)} identities held out.",
        "",
        "## Attribution",
        "",
    ]
    lines += [f"- **{s.style}**: {s.attribution}" for s in sources]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.data", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="fetch the pinned packages and build the arrays")
    b.add_argument("--out", type=Path, required=True, help="output folder (not in git)")
    b.add_argument("--size", type=int, default=32, help="image side in pixels (32 or 64)")
    b.add_argument("--cache", type=Path, default=Path("cache/npm"), help="where `npm pack` puts tarballs")
    args = parser.parse_args(argv)
    records = build(SOURCES, args.cache, args.out, args.size)
    for style in STYLES:
        n = sum(r.style == style for r in records)
        held = sum(r.style == style and r.split == "heldout" for r in records)
        print(f"{style:10s} {n:5d} images, {held:4d} held out")
    print(f"total      {len(records):5d} images -> {args.out}")


if __name__ == "__main__":
    main()
