"""training.photos: the Qt resource reader, the licence parsers and the tile geometry, on data made here."""

from __future__ import annotations

import struct
import zlib

import numpy as np
import pytest

from training.photos import Photo, area_downscale, credits_markdown, parse_debian_copyright, parse_gcompris_readme, read_rcc, tiles_of


def make_rcc(files: dict[str, bytes], version: int = 3, compress: tuple[str, ...] = ()) -> bytes:
    """A Qt resource bundle as rcc writes it: header, payload, names, then the tree (breadth-first)."""
    # Build the directory tree.
    root: dict = {}
    for path, data in files.items():
        node = root
        parts = path.strip("/").split("/")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = data
    names = bytearray()
    name_offsets: dict[str, int] = {}

    def name_offset(name: str) -> int:
        if name not in name_offsets:
            name_offsets[name] = len(names)
            encoded = name.encode("utf-16-be")
            names.extend(struct.pack(">HI", len(name), 0) + encoded)
        return name_offsets[name]

    payload = bytearray()
    nodes: list[bytes] = []
    node_size = 14 if version == 1 else 22
    # Breadth-first: a directory's children are contiguous, as rcc lays them out.
    queue: list[tuple[str, object, str]] = [("", root, "")]
    order: list[tuple[str, object, str]] = []
    while queue:
        name, value, path = queue.pop(0)
        order.append((name, value, path))
        if isinstance(value, dict):
            for child in sorted(value):
                queue.append((child, value[child], f"{path}/{child}"))
    index = {path: i for i, (_, _, path) in enumerate(order)}
    for name, value, path in order:
        offset = name_offset(name) if path else 0
        if isinstance(value, dict):
            children = sorted(value)
            first = index[f"{path}/{children[0]}"] if children else 0
            body = struct.pack(">IHII", offset, 2, len(children), first)
        else:
            blob = value
            flags = 0
            if path in compress:
                blob = struct.pack(">I", len(value)) + zlib.compress(value)
                flags = 1
            body = struct.pack(">IHHHI", offset, flags, 0, 0, len(payload))
            payload.extend(struct.pack(">I", len(blob)) + blob)
        nodes.append(body + (b"\0" * 8 if version > 1 else b""))
        assert len(nodes[-1]) == node_size
    header_size = 24 if version >= 3 else 20
    payload_at = header_size
    names_at = payload_at + len(payload)
    tree_at = names_at + len(names)
    header = b"qres" + struct.pack(">IIII", version, tree_at, payload_at, names_at)
    if version >= 3:
        header += struct.pack(">I", 0)
    return header + bytes(payload) + bytes(names) + b"".join(nodes)


@pytest.mark.parametrize("version", [1, 2, 3])
def test_rcc_round_trip_with_nested_folders_and_zlib(version: int) -> None:
    files = {
        "/gcompris/a/README": b"hello",
        "/gcompris/a/resource/x.webp": bytes(range(256)) * 3,
        "/gcompris/a/resource/sub/y.webp": b"\x00" * 1000,
        "/gcompris/b.svg": b"<svg/>",
    }
    data = make_rcc(files, version, compress=("/gcompris/a/resource/sub/y.webp",))
    assert read_rcc(data) == files


def test_rcc_refuses_other_files() -> None:
    with pytest.raises(ValueError, match="qres"):
        read_rcc(b"RIFF....WEBPVP8 ")


def test_gcompris_readme_blocks_with_files_on_one_or_many_lines() -> None:
    text = """Copyright: A, 2020
License: CC-BY-SA 4.0
Files:
a.svg
b/c.svg

Copyright: Someone
Source: https://example.org/x.jpg
License: CC0-1.0
Comments: cropping
Files: x.webp

Files: y.webp
License: Public domain
Copyright: Other
"""
    credits = parse_gcompris_readme(text)
    assert credits["b/c.svg"]["License"] == "CC-BY-SA 4.0"
    assert credits["x.webp"] == {"Copyright": "Someone", "Source": "https://example.org/x.jpg", "License": "CC0-1.0",
                                 "Comments": "cropping"}
    assert credits["y.webp"]["Copyright"] == "Other"
    # The upstream misspelling is mapped to the file's real name.
    assert parse_gcompris_readme("License: PD\nFiles:\ngermany/audaPalatina.webp")["germany/aulaPalatina.webp"]


def test_debian_copyright_files_to_licence() -> None:
    text = "Files: 16.04/a.jpg\nCopyright: X, 2018\nLicense: CC-BY-4.0\n\nFiles: 20.04/b.jpg\nCopyright: Y\nLicense: CC0-1.0\n"
    out = parse_debian_copyright(text)
    assert out["16.04/a.jpg"]["License"] == "CC-BY-4.0" and out["20.04/b.jpg"]["Copyright"] == "Y"


def test_area_downscale_is_the_exact_block_mean() -> None:
    rgb = np.random.default_rng(0).integers(0, 256, (9, 14, 3), dtype=np.uint8)
    small = area_downscale(rgb, 2)
    assert small.shape == (4, 7, 3)
    expected = rgb[:8, :14].astype(float).reshape(4, 2, 7, 2, 3).mean(axis=(1, 3))
    assert np.array_equal(small, np.rint(expected).astype(np.uint8))


def test_tiles_cover_the_image_on_the_grid_and_are_copies_of_it() -> None:
    rgb = np.random.default_rng(1).integers(0, 256, (100, 130, 3), dtype=np.uint8)
    tiles = tiles_of(rgb, 32, 32, np.random.default_rng(2))
    # a random grid offset below the stride: 2-3 rows of the 100 px height, 3-4 columns of the 130 px width
    assert tiles.shape[1:] == (32, 32, 3) and 2 * 3 <= len(tiles) <= 3 * 4
    found = sum(any(np.array_equal(t, rgb[y:y + 32, x:x + 32]) for y in range(69) for x in range(99))
                for t in tiles[:3])
    assert found == 3
    assert len(tiles_of(rgb[:20], 32, 32, np.random.default_rng(0))) == 0


def test_credits_name_every_photo_with_licence_author_and_origin() -> None:
    photos = [Photo("a_x", "pkg-a", "1.0", "usr/share/x.jpg", 10, 20, "CC-BY-4.0", "Ann Author", "https://e.org/x", "train"),
              Photo("b_y", "pkg-b", "2:3", "usr/share/y.jpg", 10, 20, "GPL-2+", "B team", "", "heldout")]
    rows = [line for line in credits_markdown(photos).splitlines() if line.startswith("| a_x") or line.startswith("| b_y")]
    assert len(rows) == 2
    assert all(w in rows[0] for w in ("CC-BY-4.0", "Ann Author", "https://e.org/x", "pkg-a", "usr/share/x.jpg"))
    assert "heldout" in rows[1] and "GPL-2+" in rows[1]
