"""Build the photo training set from pinned Debian packages (issue: a model of natural photographs).

`python -m training.photos build --out data/photos` fetches the packages with `apt-get download`, unpacks
them with `dpkg-deb -x` (nothing is installed), keeps only the photographs (listed below by name: the rest
of each package is drawings, renders or gradients), and writes

- `photos/<id>.png`: every photograph, RGB, at its own size (the held-out ones are the benchmarks' images);
- `manifest.jsonl`: one record per photo (id, package and version, original path, size, licence, credit, split);
- `images.npy` + `index.jsonl`: the training tiles (uint8, N x R x R x 3), crops of the training photos at
  native size and area-downscaled by 2 and 4 (downscaling also hides the JPEG/WebP artefacts), in the layout
  `training.train` reads;
- `DATA_CARD.md` and `contact_<package>.png`, to check by eye that these are photographs.

Building twice gives identical bytes. Nothing of it is committed.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import re
import struct
import subprocess
import zlib
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from PIL import Image

HELDOUT_EVERY = 8  # every 8th photo of each package (by sorted id) is held out: 12.5%, spread over the sources
SCALES = (1, 2, 4)  # tiles at native size and area-downscaled by these factors


@dataclass(frozen=True)
class Package:
    """One pinned Debian package and the photographs it holds."""

    name: str
    version: str
    sha256: str
    licence: str  # the package's licence where files carry none of their own
    credit: str


PACKAGES: tuple[Package, ...] = (
    Package("gcompris-qt-data", "3.1-2", "e9cf06ab2105529068df73085784e835d2ff03f870d2a8091f09125d40abac9f", "per file (activity READMEs)",
            "GCompris (KDE), photographs from Wikimedia Commons credited per file"),
    Package("lomiri-wallpapers-16.04", "20.04.0-2", "a99ff6a3bfe451e4cc0682ecb3cc82e71740626d59e4845ae34a0a0e45421eab", "per file (debian/copyright)", "Lomiri wallpapers (UBports)"),
    Package("lomiri-wallpapers-20.04", "20.04.0-2", "d44e89b8473aafe64a5b678f014862dc31335aaaf18665c544d985d854f1a709", "per file (debian/copyright)", "Lomiri wallpapers (UBports)"),
    Package("plasma-workspace-wallpapers", "4:5.27.5-2", "32cd18b71c8c938a18b3b351f217c02ac590e323caa3cf322fbb875ce8892f8b", "per file (metadata.json)", "KDE Plasma wallpapers"),
    Package("mate-backgrounds", "1.26.0-1", "7bf4c2209f34b4f61ba6d24c8b58c28b361e82e4b943aae6d42c030169af9e04", "GPL-2+", "MATE desktop backgrounds, (c) the MATE developers"),
    Package("tuxpaint-data", "1:0.9.28-sdl2-1", "f5d0de8f9a70d2efc1241d19f26168cb8bf279f1b77abd3631e7a1a55c40e5e5", "GPL-2+", "Tux Paint templates, (c) New Breed Software and contributors"),
)

# gcompris activities -> the photographs in their resource folders (the rest are drawings and sounds)
GCOMPRIS_PHOTOS: dict[str, str] = {
    "erase": r"resource/[a-z_]+\.webp$",
    "explore_monuments": r"resource/[a-z]+/[A-Za-z]+\.webp$",
    "explore_world_animals": r"resource/animals/[a-z_]+\.webp$",
    "explore_farm_animals": r"resource/animals/[a-z]+\.webp$",
    "clickgame": r"resource/sea[1-6]\.webp$",
}
PLASMA_PHOTOS = ("BytheWater", "ColdRipple", "ColorfulCups", "DarkestHour", "EveningGlow", "FallenLeaf", "Grey",
                 "Kite", "OneStandsOut", "Path", "summer_1am")
# upstream README entries whose file name is misspelt: README name -> file name
GCOMPRIS_README_TYPOS = {"germany/audaPalatina.webp": "germany/aulaPalatina.webp"}
LOMIRI_NOT_PHOTOS = ("umang_by_Abhishek_Mudgal.jpg",)  # a gradient
LOMIRI_2004_PHOTOS = ("Kleiber_by_Lukas_Baubkus.jpg",)  # the others are renders


@dataclass(frozen=True)
class Photo:
    id: str
    package: str
    version: str
    path: str  # inside the package (for gcompris: the .rcc bundle, then the path inside it)
    width: int
    height: int
    licence: str
    credit: str
    source_url: str
    split: str  # "train" or "heldout"


def read_rcc(data: bytes) -> dict[str, bytes]:
    """The files of a Qt resource bundle (rcc format 1-3): path -> bytes, zlib entries inflated."""
    if data[:4] != b"qres":
        raise ValueError("not a Qt resource bundle (no 'qres' magic)")
    version, tree, payload, names = struct.unpack(">IIII", data[4:20])
    node_size = 14 if version == 1 else 22  # format 2 added an 8-byte modification time per node

    def name_at(offset: int) -> str:
        length = struct.unpack(">H", data[names + offset : names + offset + 2])[0]
        start = names + offset + 6  # length, then a 4-byte hash, then UTF-16BE
        return data[start : start + 2 * length].decode("utf-16-be")

    files: dict[str, bytes] = {}
    stack = [(0, "")]
    while stack:
        index, prefix = stack.pop()
        node = tree + index * node_size
        name_offset, flags = struct.unpack(">IH", data[node : node + 6])
        path = prefix + (name_at(name_offset) if index else "")
        if flags & 2:  # directory: child count, first child index
            count, first = struct.unpack(">II", data[node + 6 : node + 14])
            stack.extend((child, path + "/") for child in range(first, first + count))
            continue
        if flags & 4:
            raise ValueError(f"{path}: zstd-compressed rcc entries are not supported")
        offset = payload + struct.unpack(">I", data[node + 10 : node + 14])[0]
        size = struct.unpack(">I", data[offset : offset + 4])[0]
        blob = data[offset + 4 : offset + 4 + size]
        files[path] = zlib.decompress(blob[4:]) if flags & 1 else blob  # 4-byte uncompressed size first
    return files


def parse_gcompris_readme(text: str) -> dict[str, dict[str, str]]:
    """file (relative to the README's folder) -> {Copyright, License, Source} from a GCompris resource README."""
    out: dict[str, dict[str, str]] = {}
    for block in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        files: list[str] = []
        in_files = False
        for line in block.splitlines():
            key, sep, value = line.partition(":")
            if sep and key.strip() in ("Copyright", "License", "Source", "Comments", "Files"):
                in_files = key.strip() == "Files"
                if in_files:
                    files += value.split()
                else:
                    fields[key.strip()] = value.strip()
            elif in_files and line.strip():
                files.append(line.strip())
        for f in files:
            out[GCOMPRIS_README_TYPOS.get(f, f)] = fields
    return out


def parse_debian_copyright(text: str) -> dict[str, dict[str, str]]:
    """file -> {Copyright, License} from a machine-readable debian/copyright."""
    out: dict[str, dict[str, str]] = {}
    for block in re.split(r"\n\s*\n", text):
        fields = dict(re.findall(r"^(Files|Copyright|License): *(.*)$", block, re.M))
        for f in fields.get("Files", "").split():
            out[f] = fields
    return out


def fetch(package: Package, cache_dir: Path) -> Path:
    """The package's unpacked tree under `cache_dir`, downloading the .deb if absent."""
    tree = cache_dir / package.name
    if (tree / ".unpacked").exists():
        return tree
    cache_dir.mkdir(parents=True, exist_ok=True)
    debs = sorted(cache_dir.glob(f"{package.name}_*.deb"))
    if not debs:
        subprocess.run(["apt-get", "download", f"{package.name}={package.version}"], cwd=cache_dir, check=True,
                       capture_output=True)
        debs = sorted(cache_dir.glob(f"{package.name}_*.deb"))
    actual = hashlib.sha256(debs[0].read_bytes()).hexdigest()
    if actual != package.sha256:
        raise ValueError(f"{debs[0]}: sha256 is {actual}, expected {package.sha256} for {package.name} "
                         f"{package.version}; delete the file to download it again")
    subprocess.run(["dpkg-deb", "-x", str(debs[0]), str(tree)], check=True)
    (tree / ".unpacked").write_text(actual + "\n")
    return tree


def iter_photos(package: Package, tree: Path) -> list[tuple[str, bytes, dict[str, str]]]:
    """(path in package, bytes, {licence, credit, source_url}) of the package's photographs, sorted by path."""
    found: list[tuple[str, bytes, dict[str, str]]] = []
    if package.name == "gcompris-qt-data":
        for activity, pattern in GCOMPRIS_PHOTOS.items():
            rcc_path = f"usr/share/gcompris-qt/rcc/{activity}.rcc"
            files = read_rcc((tree / rcc_path).read_bytes())
            base = f"/gcompris/src/activities/{activity}/"
            readme = next(p for p in files if p.startswith(base) and p.endswith("/README"))
            folder = readme[: -len("README")]
            credits = parse_gcompris_readme(files[readme].decode())
            for path in sorted(files):
                if path.startswith(base) and re.search(pattern, path[len(base):]):
                    info = credits[path[len(folder):]]
                    found.append((f"{rcc_path}:{path}", files[path], {
                        "licence": info.get("License", ""), "credit": info.get("Copyright", ""),
                        "source_url": info.get("Source", "")}))
    elif package.name.startswith("lomiri-wallpapers"):
        release = package.name.rsplit("-", 1)[1]
        credits = parse_debian_copyright((tree / f"usr/share/doc/{package.name}/copyright").read_text())
        for path in sorted((tree / "usr/share/backgrounds").glob("*.jpg")):
            keep = path.name in LOMIRI_2004_PHOTOS if release == "20.04" else path.name not in LOMIRI_NOT_PHOTOS
            if keep:
                info = credits[f"{release}/{path.name}"]
                found.append((str(path.relative_to(tree)), path.read_bytes(),
                              {"licence": info["License"], "credit": info["Copyright"], "source_url": ""}))
    elif package.name == "plasma-workspace-wallpapers":
        for name in PLASMA_PHOTOS:
            folder = tree / "usr/share/wallpapers" / name
            meta = json.loads((folder / "metadata.json").read_text())["KPlugin"]
            path = folder / "contents/images/2560x1600.jpg"
            found.append((str(path.relative_to(tree)), path.read_bytes(), {
                "licence": meta.get("License", ""), "credit": meta["Authors"][0]["Name"], "source_url": ""}))
    else:
        folder = {"mate-backgrounds": "usr/share/backgrounds/mate/nature",
                  "tuxpaint-data": "usr/share/tuxpaint/templates"}[package.name]
        for path in sorted((tree / folder).glob("*.jpg")):
            found.append((str(path.relative_to(tree)), path.read_bytes(),
                          {"licence": package.licence, "credit": package.credit, "source_url": ""}))
    return found


def area_downscale(rgb: np.ndarray, factor: int) -> np.ndarray:
    """Exact factor x factor block means (the crop is trimmed to a multiple of the factor), rounded to uint8."""
    h, w = (rgb.shape[0] // factor) * factor, (rgb.shape[1] // factor) * factor
    blocks = rgb[:h, :w].reshape(h // factor, factor, w // factor, factor, 3).astype(np.float64)
    return np.rint(blocks.mean(axis=(1, 3))).astype(np.uint8)


def tiles_of(rgb: np.ndarray, size: int, stride: int, rng: np.random.Generator) -> np.ndarray:
    """size x size crops on a stride grid with a random offset; (N, size, size, 3)."""
    h, w = rgb.shape[:2]
    if h < size or w < size:
        return np.zeros((0, size, size, 3), np.uint8)
    oy, ox = (int(rng.integers(0, min(stride, h - size + 1))), int(rng.integers(0, min(stride, w - size + 1))))
    crops = [rgb[y : y + size, x : x + size] for y in range(oy, h - size + 1, stride)
             for x in range(ox, w - size + 1, stride)]
    return np.stack(crops)


def build(packages: tuple[Package, ...], cache_dir: Path, out_dir: Path, size: int) -> list[Photo]:
    """Write the photos, manifest, training tiles, data card and contact sheets to `out_dir`."""
    (out_dir / "photos").mkdir(parents=True, exist_ok=True)
    photos: list[Photo] = []
    tiles: list[np.ndarray] = []
    tile_records: list[dict] = []
    for package in packages:
        tree = fetch(package, cache_dir)
        found = iter_photos(package, tree)
        for k, (path, data, info) in enumerate(found):
            stem = re.sub(r"[^A-Za-z0-9_]+", "_", Path(path.split(":")[-1]).stem)
            if package.name == "plasma-workspace-wallpapers":
                stem = path.split("/")[3]
            elif package.name == "gcompris-qt-data":  # the same animal is in two activities
                stem = f"{Path(path.split(':')[0]).stem}_{stem}"
            photo_id = f"{package.name.split('-')[0]}_{stem}"
            with Image.open(io.BytesIO(data)) as image:
                rgb = np.asarray(image.convert("RGB"))
            split = "heldout" if k % HELDOUT_EVERY == HELDOUT_EVERY // 2 else "train"
            photos.append(Photo(photo_id, package.name, package.version, path, rgb.shape[1], rgb.shape[0], **info,
                                split=split))
            Image.fromarray(rgb).save(out_dir / "photos" / f"{photo_id}.png", optimize=False, compress_level=1)
            if split != "train":
                continue
            rng = np.random.default_rng(int.from_bytes(hashlib.sha256(photo_id.encode()).digest()[:8], "big"))
            for scale in SCALES:
                # native size: non-overlapping crops; downscaled ones overlap by half (fewer distinct pixels)
                crops = tiles_of(area_downscale(rgb, scale) if scale > 1 else rgb, size,
                                 size if scale == 1 else size // 2, rng)
                tiles.append(crops)
                tile_records += [{"photo": photo_id, "scale": scale, "split": "train"}] * len(crops)
    ids = [p.id for p in photos]
    if len(set(ids)) != len(ids):
        raise ValueError("two photos share an id")
    array = np.concatenate(tiles)
    np.save(out_dir / "images.npy", array)
    with open(out_dir / "index.jsonl", "w") as f:
        f.writelines(json.dumps(r, sort_keys=True) + "\n" for r in tile_records)
    with open(out_dir / "manifest.jsonl", "w") as f:
        f.writelines(json.dumps(asdict(p), sort_keys=True, ensure_ascii=False) + "\n" for p in photos)
    for package in packages:
        contact_sheet(out_dir / "photos", [p for p in photos if p.package == package.name]).save(
            out_dir / f"contact_{package.name}.png")
    (out_dir / "DATA_CARD.md").write_text(data_card(packages, photos, len(array), size))
    return photos


def contact_sheet(folder: Path, photos: list[Photo], thumb: int = 160, columns: int = 8) -> Image.Image:
    """Thumbnails of the photos (held-out ones framed in red) in one grid image."""
    rows = (len(photos) + columns - 1) // columns
    sheet = Image.new("RGB", (columns * thumb, rows * thumb), (255, 255, 255))
    for i, photo in enumerate(photos):
        with Image.open(folder / f"{photo.id}.png") as image:
            image.thumbnail((thumb - 8, thumb - 8), Image.Resampling.BOX)
            r, c = divmod(i, columns)
            if photo.split == "heldout":
                sheet.paste((200, 0, 0), (c * thumb, r * thumb, (c + 1) * thumb, (r + 1) * thumb))
            sheet.paste(image, (c * thumb + 4, r * thumb + 4))
    return sheet


def load_heldout(folder: Path) -> list[tuple[str, np.ndarray]]:
    """(id, uint8 HxWx3) of the held-out photos, in manifest order: the benchmarks' images."""
    manifest = [json.loads(line) for line in (folder / "manifest.jsonl").read_text().splitlines()]
    return [(m["id"], np.asarray(Image.open(folder / "photos" / f"{m['id']}.png").convert("RGB")))
            for m in manifest if m["split"] == "heldout"]


def data_card(packages: tuple[Package, ...], photos: list[Photo], tiles: int, size: int) -> str:
    megapixels = sum(p.width * p.height for p in photos) / 1e6
    lines = [
        "# Photo training data",
        "",
        f"Built by `python -m training.photos build --size {size}` from pinned Debian packages: {len(photos)} "
        f"photographs, {megapixels:.0f} megapixels; {tiles} training tiles of {size}x{size} at scales "
        f"{', '.join(f'1/{s}' for s in SCALES)}. Held out (never trained on): every {HELDOUT_EVERY}th photo of each "
        f"package, {sum(p.split == 'heldout' for p in photos)} in all.",
        "",
        "| package | version | photos | held out | licence |",
        "|---|---|---|---|---|",
    ]
    for pkg in packages:
        mine = [p for p in photos if p.package == pkg.name]
        licences = ", ".join(sorted({p.licence for p in mine}))
        lines.append(f"| {pkg.name} | {pkg.version} | {len(mine)} | {sum(p.split == 'heldout' for p in mine)} "
                     f"| {licences} |")
    return "\n".join(lines) + "\n\n" + credits_markdown(photos)


def credits_markdown(photos: list[Photo]) -> str:
    """Every photo's licence, author and source, as CC-BY and the GPL ask (shipped beside the photo models)."""
    lines = ["## Credits", "", "Photographs from Debian packages (package, version, then the path inside it); "
             "the held-out ones are never trained on.", "",
             "| photo | split | licence | author / copyright | source |", "|---|---|---|---|---|"]
    lines += [f"| {p.id} | {p.split} | {p.licence} | {p.credit} | {p.source_url or ''} "
              f"(`{p.package}` {p.version}: `{p.path}`) |" for p in photos]
    return "\n".join(lines) + "\n"


def read_manifest(folder: Path) -> list[Photo]:
    return [Photo(**json.loads(line)) for line in (folder / "manifest.jsonl").read_text().splitlines()]


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.photos", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    b = sub.add_parser("build", help="fetch the pinned packages and build the photo set")
    b.add_argument("--out", type=Path, required=True, help="output folder (not in git)")
    b.add_argument("--size", type=int, default=64, help="training tile side in pixels")
    b.add_argument("--cache", type=Path, default=Path("cache/debs"), help="where the .deb files are unpacked")
    c = sub.add_parser("credits", help="write the credits table of a built photo set (for a model folder)")
    c.add_argument("--data", type=Path, default=Path("data/photos"), help="a folder written by build")
    c.add_argument("--out", type=Path, required=True, help="the markdown file to write")
    args = parser.parse_args(argv)
    if args.command == "credits":
        args.out.write_text(credits_markdown(read_manifest(args.data)).replace("## Credits", "# Photo credits", 1))
        return
    photos = build(PACKAGES, args.cache, args.out, args.size)
    for pkg in PACKAGES:
        mine = [p for p in photos if p.package == pkg.name]
        print(f"{pkg.name:30s} {len(mine):4d} photos, {sum(p.split == 'heldout' for p in mine):3d} held out")
    print(f"total {len(photos)} photos -> {args.out}")


if __name__ == "__main__":
    main()
