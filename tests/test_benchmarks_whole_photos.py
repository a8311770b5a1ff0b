"""The photos benchmark section (whole held-out photos): its seam bands follow the tiled grid, and it runs every
task on tiny models, keeps the measured parts and writes its before/after crops."""

from __future__ import annotations

from pathlib import Path

import torch

from benchmarks.run import Options, run
from benchmarks.whole_photos import WholeBudget, grid_shift, seam_masks, tile_edges
from editing.tiling import Tiling, tile_generators, tiled
from tests.conftest import make_tiny_folder
from tests.test_benchmarks_photos import make_photos


def tile_ids(tiles: torch.Tensor, sigma: torch.Tensor) -> torch.Tensor:
    """A stand-in network whose output on each tile is that tile's index in the call (1, 2, ...)."""
    return (torch.arange(len(tiles), dtype=torch.float32) + 1).view(-1, 1, 1, 1).expand_as(tiles).clone()


def test_tile_edges_are_where_the_tiled_blend_starts_and_stops() -> None:
    tiling, width = Tiling(16, 5, batch=64), 71  # one call: every tile gets its own index
    blend = tiled(tile_ids, tiling, tile_generators([0]))
    x = torch.zeros(1, 3, 16, width)  # one tile high: only the columns are tiled
    for evaluation in range(1, 6):  # each call draws the next shift
        out = blend(x, torch.tensor([0.5]))[0, 0, 0]
        mixed = (out - out.round()).abs() > 1e-6  # two tiles overlap here
        changes = [i for i in range(1, width) if mixed[i] != mixed[i - 1]]
        if mixed[0]:
            changes = [0] + changes
        dy, dx = grid_shift(0, evaluation, tiling)
        assert changes == tile_edges(width, dx, tiling), evaluation
        assert tile_edges(16, dy, tiling) == []


def test_seam_bands_are_band_wide_and_interiors_keep_clear() -> None:
    tiling = Tiling(20, 6)  # edges 6 or 8 pixels apart: the 4-pixel bands do not touch
    band, interior = seam_masks(40, 50, (3, 7), tiling, 4)
    rows, cols = tile_edges(40, 3, tiling), tile_edges(50, 7, tiling)
    assert rows and cols
    for e in [e for e in cols if 3 <= e <= 47]:  # a row far from every row edge crosses each column band in exactly 4 pixels
        far = next(i for i in range(40) if all(abs(i + 0.5 - r) > 4 for r in rows))
        assert band[far, e - 2:e + 2].all() and not band[far, e - 3] and not band[far, e + 2]
    assert not (band & interior).any() and interior.sum() > 0


def test_photos_section_runs_every_task_on_tiny_models(tmp_path: Path, monkeypatch) -> None:
    import benchmarks.whole_photos as whole

    monkeypatch.setattr(whole, "WHOLE_QUICK", WholeBudget(photos=2, side=40, sigmas_255=(25,), tune_side=20))
    cm = make_tiny_folder(tmp_path / "photo-cm", classes=())
    teacher = make_tiny_folder(tmp_path / "photo-edm", classes=(), boundary="edm", seed=1)
    doc = run(Options(model=None, teacher=None, out_dir=tmp_path / "out", sections=("photos",), quick=True,
                      photo_model=cm, photo_teacher=teacher, photo_data=make_photos(tmp_path / "photos")))
    table = doc["tables"]["photos"]
    rows = table["rows"]
    assert {"denoising sigma 25/255", "super-resolution x2", "super-resolution x4", "colorization from luma",
            "inpainting: centre box (1/64 of the area)"} == {r[0] for r in rows}
    methods = {r[1] for r in rows}
    assert {"CBM3D (true sigma)", "faithful: teacher, 1 evaluation (photo-edm)", "Lanczos",
            "CM (photo-cm, Algorithm 4)", "teacher's D (photo-edm, Algorithm 4)"} <= methods
    assert {r[0] for r in rows if r[1] == "teacher's D (photo-edm, Algorithm 4)"} == {
        "super-resolution x2", "super-resolution x4", "inpainting: centre box (1/64 of the area)",
        "colorization from luma"}  # every edit, as the studio runs them on photo models
    for task, method, p, _, dc, seam, seconds in rows:
        assert seconds > 0 and p > 0, (task, method)
        if "Algorithm 4" in method:  # the measured part is kept across the whole tiled image
            assert dc is not None and dc < 1e-3, (task, method, dc)
        if method.startswith(("faithful", "sharp", "CM", "teacher's")) and "inpainting" not in task:
            assert seam is not None, (task, method)
    assert "p1, p2" in table["notes"][0]  # both held-out photos, not the training one
