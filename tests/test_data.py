"""The data builder on a fixture tarball made here: compositing, resizing, identity split, determinism, hashes."""

from __future__ import annotations

import io
import json
import tarfile
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from training.data import (
    Source,
    TarballHashError,
    build,
    identity_of,
    read_folder,
    sha256_file,
    split_of,
    to_square_rgb,
)


def _png(image: Image.Image) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def make_tarball(path: Path, names: list[str]) -> None:
    """An npm-style tarball: package/img/test/64/<codepoints>.png plus an emoji.json with categories."""
    emoji_json = [{"unified": n.upper(), "category": "Smileys & Emotion"} for n in names if "1f3fb" not in n]
    with tarfile.open(path, "w:gz") as tar:
        def add(name: str, data: bytes) -> None:
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mtime = 0
            tar.addfile(info, io.BytesIO(data))

        add("package/emoji.json", json.dumps(emoji_json).encode())
        for i, name in enumerate(names):
            rgba = Image.new("RGBA", (64, 64), (0, 0, 0, 0))
            rgba.paste((200, 10 * i % 255, 30, 255), (16, 16, 48, 48))
            add(f"package/img/test/64/{name}.png", _png(rgba))
        add("package/README.md", b"not an image")


@pytest.fixture()
def source(tmp_path: Path) -> Source:
    names = [f"1f6{i:02x}" for i in range(40)] + ["1f44d", "1f44d-1f3fb"]
    cache = tmp_path / "cache"
    cache.mkdir()
    src = Source("test", "fixture-pkg", "1.0.0", "", "package/img/test/64/", ".png", "MIT", "Fixture art.")
    make_tarball(cache / src.tarball_name, names)
    return replace(src, sha256=sha256_file(cache / src.tarball_name))


def test_composite_on_white_and_area_resize() -> None:
    rgba = Image.new("RGBA", (64, 64), (255, 0, 0, 0))  # fully transparent red must become white
    rgba.paste((0, 0, 0, 255), (0, 0, 32, 64))  # left half opaque black
    out = to_square_rgb(rgba, 32)
    assert out.shape == (32, 32, 3) and out.dtype == np.uint8
    assert (out[:, :16] == 0).all() and (out[:, 16:] == 255).all()
    half = Image.new("RGBA", (2, 2), (0, 0, 0, 128))  # 50% black over white -> mid grey
    assert abs(int(to_square_rgb(half, 16)[0, 0, 0]) - 127) <= 1


def test_integer_shrink_is_the_rounded_block_mean() -> None:
    # The one resize the studio also uses: at an integer factor every output pixel is its block's mean.
    pixels = np.random.default_rng(0).integers(0, 256, (96, 96, 3), dtype=np.uint8)
    expected = pixels.astype(np.float64).reshape(32, 3, 32, 3, 3).mean(axis=(1, 3))
    out = to_square_rgb(Image.fromarray(pixels), 32)
    assert np.abs(out.astype(np.float64) - expected).max() <= 0.5 + 1e-3


def test_non_square_is_centre_padded() -> None:
    tall = Image.new("RGB", (32, 64), (0, 0, 0))
    out = to_square_rgb(tall, 32)
    assert (out[:, 8:24] == 0).all()  # the image, centred
    assert (out[:, :8] == 255).all() and (out[:, 24:] == 255).all()  # white padding


def test_identity_folds_skin_tones_and_split_is_by_identity() -> None:
    assert identity_of("1F44D-1F3FB") == identity_of("1f44d") == "1f44d"
    assert identity_of("2764-fe0f") == "2764"
    ids = [f"{i:05x}" for i in range(4000)]
    held = [i for i in ids if split_of(i) == "heldout"]
    assert 0.03 < len(held) / len(ids) < 0.07
    assert all(split_of(i) == split_of(i) for i in ids[:50])


def test_build_is_deterministic_and_splits_by_identity(tmp_path: Path, source: Source) -> None:
    cache = tmp_path / "cache"
    a = build((source,), cache, tmp_path / "a", 32)
    b = build((source,), cache, tmp_path / "b", 32)
    assert len(a) == 42
    assert (tmp_path / "a" / "images.npy").read_bytes() == (tmp_path / "b" / "images.npy").read_bytes()
    assert (tmp_path / "a" / "index.jsonl").read_text() == (tmp_path / "b" / "index.jsonl").read_text()
    images = np.load(tmp_path / "a" / "images.npy")
    assert images.shape == (42, 32, 32, 3)
    by_identity: dict[str, set[str]] = {}
    for r in a:
        by_identity.setdefault(r.identity, set()).add(r.split)
    assert all(len(splits) == 1 for splits in by_identity.values())  # no identity in both splits
    thumbs = [r for r in a if r.identity == "1f44d"]
    assert len(thumbs) == 2 and thumbs[0].split == thumbs[1].split
    assert all(r.category == "Smileys & Emotion" for r in a)
    card = (tmp_path / "a" / "DATA_CARD.md").read_text()
    assert "Fixture art." in card and "MIT" in card
    assert (tmp_path / "a" / "contact_test.png").exists()
    pixels, records = read_folder(tmp_path / "a")
    assert np.array_equal(pixels, images) and [r["split"] for r in records] == [r.split for r in a]
    index = tmp_path / "a" / "index.jsonl"
    index.write_text("\n".join(index.read_text().splitlines()[:-1]) + "\n")  # one record short
    with pytest.raises(ValueError, match="42 images but 41 index records"):
        read_folder(tmp_path / "a")


def test_hash_mismatch_is_a_clear_error(tmp_path: Path, source: Source) -> None:
    bad = replace(source, sha256="0" * 64)
    with pytest.raises(TarballHashError, match="sha256 is .* expected 0000"):
        build((bad,), tmp_path / "cache", tmp_path / "out", 32)


def test_bad_size_rejected(tmp_path: Path, source: Source) -> None:
    with pytest.raises(ValueError, match="size must be"):
        build((source,), tmp_path / "cache", tmp_path / "out", 33)
