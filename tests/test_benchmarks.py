"""Benchmarks: a whole run on tiny models and a synthetic data folder, tables and files; skipped rows; baselines."""

from __future__ import annotations

import dataclasses
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from benchmarks.__main__ import main
from benchmarks.common import Budget, Table, load_dataset
from benchmarks.edits import grayscale, opencv_inpaint, opencv_resize, random_strokes
from benchmarks.quality import paired
from benchmarks.run import Options, run
from editing.metrics import data_consistency
from editing.operators import Colorize, Inpaint
from editing.schedules import Schedule, uniform
from tests.conftest import CLASSES, make_tiny_folder
from training.tune_ts import write_schedules

TINY = Budget(reps=1, speed_batches=(1,), scaling_batches=(1, 2), samples_per_style=3, quality_styles=3,
              sample_batch=3, edit_images_per_style=2, edit_styles=1, cm_steps=(1, 2), teacher_steps=(1, 2),
              noise_levels=(0.2,), swd_per_image=8, measure_256=False,
              diffusers_batches=(1,), speed_tile_batch=False, runtimes=False)


def make_data(folder: Path, size: int = 16, per_style: int = 5) -> Path:
    """A data folder shaped like `python -m training.data build` output: 2 held-out images per style."""
    g = np.random.default_rng(0)
    folder.mkdir(parents=True)
    records, images = [], []
    for style in CLASSES:
        for i in range(per_style):
            images.append(g.integers(0, 256, (size, size, 3), dtype=np.uint8))
            records.append({"style": style, "split": "heldout" if i < 2 else "train", "codepoints": f"{i:x}"})
    np.save(folder / "images.npy", np.stack(images))
    (folder / "index.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records))
    return folder


@pytest.fixture(scope="module")
def setup(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("bench")
    return {
        "model": make_tiny_folder(root / "weights" / "tiny-cm"),
        "teacher": make_tiny_folder(root / "weights" / "tiny-edm", boundary="edm", seed=1),
        "data": make_data(root / "data"),
        "root": root,
    }


def test_full_run_on_tiny_models(setup: dict[str, Path]) -> None:
    out = setup["root"] / "out"
    doc = run(Options(model=setup["model"], teacher=setup["teacher"], data=setup["data"], out_dir=out,
                      sections=("speed", "quality", "edits"), budget=TINY))
    text = (out / "RESULTS.md").read_text()
    assert json.loads((out / "RESULTS.json").read_text())["machine"]["torch"] == torch.__version__
    for key in ("speed", "overhead", "diffusers", "tasks", "quality", "edits"):
        assert doc["tables"][key]["rows"], key
    assert "cpu" in doc["machine"] and "cores" in doc["machine"] and doc["machine"]["dtype"]
    # Every task of editing.tasks has a row, the teacher's Heun baseline included.
    tasks = {row[0] for row in doc["tables"]["tasks"]["rows"]}
    assert {"generate", "inpaint", "colorize", "superresolve", "stroke_edit", "interpolate_seeds",
            "interpolate_images", "denoise", "heun_baseline (teacher)"} <= tasks
    # Our sampler and diffusers' pipeline agree on the same UNet and noise: to fp32 rounding, and under bf16
    # autocast (a row of its own where the CPU has native bf16) to bf16's.
    rows = doc["tables"]["diffusers"]["rows"]
    assert any(row[3] == "PyTorch eager" for row in rows)
    # the model itself is compared, its pixel-unshuffled UNet run by the pipeline through PixelShuffledUNet
    assert any(row[0] == "tiny-cm" and row[3] == "PyTorch eager" for row in rows)
    for row in rows:
        assert row[-2] < (0.05 if "bf16" in row[3] else 1e-4), row  # max |diff|
        assert row[-1] <= row[-2]  # mean |diff|
    # The CM's edits keep the measurement exactly; the classical upscalers do not.
    edits = {(r[0], r[1]): r for r in doc["tables"]["edits"]["rows"]}
    assert edits[("super-resolution x2", "CM (tiny-cm)")][4] < 1e-4
    assert edits[("super-resolution x2", "bicubic")][4] > 1e-3
    assert edits[("inpaint: centre box", "CM (tiny-cm)")][4] < 1e-4
    quality = [r[:3] for r in doc["tables"]["quality"]["rows"]]
    assert ["tiny-edm", "Heun 2 steps", 3] in quality and ["tiny-cm", "2 steps", 2] in quality
    assert "| inpaint: random strokes |" in text and "SWD 16px" in text


def test_a_partial_run_replaces_only_its_tables(setup: dict[str, Path]) -> None:
    out = setup["root"] / "out-partial"
    first = run(Options(model=setup["model"], teacher=setup["teacher"], data=setup["data"], out_dir=out,
                        sections=("speed", "quality"), budget=TINY))
    renamed = setup["root"] / "weights" / "retrained-cm"
    shutil.copytree(setup["model"], renamed)
    second = run(Options(model=renamed, teacher=setup["teacher"], data=setup["data"], out_dir=out,
                         sections=("quality",), budget=TINY))
    # The speed tables of the first run are kept as they were, in their order; quality is the new run's.
    assert list(second["tables"]) == list(first["tables"])
    assert second["tables"]["speed"] == first["tables"]["speed"]
    assert "tiny-cm" in second["tables"]["speed"]["run"]
    models = {row[0] for row in second["tables"]["quality"]["rows"]}
    assert "retrained-cm" in models and "tiny-cm" not in models
    assert "retrained-cm" in second["tables"]["quality"]["run"]
    text = (out / "RESULTS.md").read_text()
    assert text.count("*Run: ") == len(second["tables"])
    # A file that is not ours is not merged into: the partial run's tables alone are written.
    (out / "RESULTS.json").write_text("not json")
    third = run(Options(model=renamed, teacher=setup["teacher"], data=setup["data"], out_dir=out,
                        sections=("quality",), budget=TINY))
    assert list(third["tables"]) == ["quality"]


def test_tuned_schedules_get_rows_of_their_own(setup: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    tuned = shutil.copytree(setup["model"], setup["root"] / "weights-tuned" / "tuned-cm")
    write_schedules(tuned, [(Schedule((0, 39), 40), 1.0), (Schedule((0, 9, 39), 40), 0.5),
                            (uniform(4, 40), 0.4)], "test")
    budget = dataclasses.replace(TINY, cm_steps=(1, 2, 4))
    doc = run(Options(model=tuned, teacher=None, data=setup["data"], out_dir=setup["root"] / "out-tuned",
                      sections=("quality",), budget=budget))
    samplers = [r[1] for r in doc["tables"]["quality"]["rows"] if r[0] == "tuned-cm"]
    # A tuned ts that differs from the fixed one gets a row; one that equals it (4 even steps) does not.
    assert samplers == ["1 step", "2 steps", "4 steps", "2 steps, tuned ts [0, 9, 39]"]
    (tuned / "schedules.json").write_text("{")
    doc = run(Options(model=tuned, teacher=None, data=setup["data"], out_dir=setup["root"] / "out-tuned",
                      sections=("quality",), budget=TINY))
    assert not any("tuned" in r[1] for r in doc["tables"]["quality"]["rows"])
    err = capsys.readouterr().err
    assert "tuned-ts rows skipped" in err and "not valid JSON" in err


def test_missing_models_are_skipped_clearly(setup: dict[str, Path], capsys: pytest.CaptureFixture) -> None:
    out = setup["root"] / "out-missing"
    main(["--quick", "--model", str(setup["root"] / "nope-cm"), "--teacher", str(setup["teacher"]),
          "--data", str(setup["data"]), "--out-dir", str(out), "--sections", "quality"])
    text = (out / "RESULTS-quick.md").read_text()
    assert "nope-cm rows skipped" in text and "not found" in text
    assert "| tiny-edm | Heun 18 steps | 35 |" in text
    assert "# Benchmarks" in capsys.readouterr().out


def test_cli_rejects_unknown_sections() -> None:
    with pytest.raises(SystemExit):
        main(["--sections", "speed,bogus"])


def test_dataset_and_baselines(setup: dict[str, Path]) -> None:
    data = load_dataset(setup["data"])
    held = data.select("heldout", "noto")
    assert held.shape == (2, 3, 16, 16) and held.min() >= -1 and held.max() <= 1
    mask = random_strokes(2, 16, torch.Generator().manual_seed(0))
    assert mask.dtype == torch.bool and mask.any() and not mask.all()
    filled = opencv_inpaint(held, mask, 0)
    assert float(data_consistency(Inpaint(mask), filled, held).max()) < 0.05  # uint8 rounding only
    assert float(data_consistency(Colorize(), grayscale(held), held).max()) < 0.05
    assert opencv_resize(held[:, :, ::2, ::2], 16, 2).shape == held.shape


def test_table_markdown() -> None:
    t = Table("k", "Title", ["a", "b"])
    t.add("x", 1234.5)
    t.add("y", None)
    t.notes.append("a note")
    md = t.markdown()
    assert "| x | 1,234 |" in md and "| y | — |" in md and "- a note" in md


def test_quality_reports_precision_and_recall(setup: dict[str, Path]) -> None:
    """With more than k = 3 images per style the quality rows carry precision and recall, fractions in [0, 1];
    the real held-out reference (2 per style here) is too small for k-NN balls and leaves them empty."""
    data = make_data(setup["root"] / "data-pr", per_style=8)  # 6 training images per style
    budget = dataclasses.replace(TINY, samples_per_style=5, sample_batch=5, cm_steps=(1,))
    doc = run(Options(model=setup["model"], teacher=None, data=data, out_dir=setup["root"] / "out-pr",
                      sections=("quality",), budget=budget))
    table = doc["tables"]["quality"]
    p, r = table["columns"].index("precision"), table["columns"].index("recall")
    rows = {row[0]: row for row in table["rows"]}
    assert 0.0 <= rows["tiny-cm"][p] <= 1.0 and 0.0 <= rows["tiny-cm"][r] <= 1.0
    assert rows["real held-out images"][p] is None


def test_draw_set_0_is_the_quality_tables_draw(setup: dict[str, Path]) -> None:
    """With one draw set, the sets table's SWD means are the quality table's, row for row (same draws)."""
    budget = dataclasses.replace(TINY, draw_sets=1, sets_cm_steps=(1, 2), sets_teacher_steps=(2,))
    doc = run(Options(model=setup["model"], teacher=setup["teacher"], data=setup["data"],
                      out_dir=setup["root"] / "out-sets1", sections=("quality", "quality_sets"), budget=budget))
    quality, sets = doc["tables"]["quality"], doc["tables"]["quality_sets"]
    q_mean = quality["columns"].index("SWD mean")
    s_mean = sets["columns"].index("SWD mean")
    by_row = {(r[0], r[1]): r[q_mean] for r in quality["rows"]}
    assert [(r[0], r[1]) for r in sets["rows"]] == [("tiny-cm", "1 step"), ("tiny-cm", "2 steps"),
                                                    ("tiny-edm", "Heun 2 steps")]
    for row in sets["rows"]:
        assert row[s_mean] == by_row[(row[0], row[1])]
    assert doc["machine"]["draw_sets"] == 1 and doc["machine"]["mode"] == "custom"


def test_draw_sets_are_independent_and_paired(setup: dict[str, Path]) -> None:
    budget = dataclasses.replace(TINY, draw_sets=3, sets_cm_steps=(1, 2), sets_teacher_steps=(2,))
    doc = run(Options(model=setup["model"], teacher=setup["teacher"], data=setup["data"],
                      out_dir=setup["root"] / "out-sets3", sections=("quality_sets",), budget=budget))
    table = doc["tables"]["quality_sets"]
    col = {name: table["columns"].index(name) for name in table["columns"]}
    rows = table["rows"]
    first = rows[0]
    per_set = [float(v) for v in first[col["SWD mean per set"]].split(" / ")]
    assert len(per_set) == 3 and len(set(per_set)) > 1  # each set draws its own noise, references, directions
    assert first[col["Δ vs first row"]] is None and first[col["sets below first row"]] is None
    for row in rows[1:]:
        # The mean of paired differences is the difference of the means.
        assert row[col["Δ vs first row"]] == pytest.approx(row[col["SWD mean"]] - first[col["SWD mean"]])
        below, total = row[col["sets below first row"]].split(" / ")
        assert total == "3" and 0 <= int(below) <= 3
        assert row[col["s.e. of Δ"]] >= 0
    assert "Δ" in (setup["root"] / "out-sets3" / "RESULTS.md").read_text()


def test_paired_statistics() -> None:
    p = paired([3.0, 5.0, 7.0], [4.0, 4.0, 4.0])
    assert (p.mean, p.sd, p.diff_mean, p.below) == (5.0, 2.0, 1.0, 1)
    assert p.diff_se == pytest.approx(2.0 / 3 ** 0.5)  # differences -1, 1, 3: sd 2
    one = paired([1.0], [2.0])
    assert one.diff_mean == -1.0 and one.below == 1 and one.sd != one.sd  # nan: no spread from one set
    with pytest.raises(ValueError, match="same non-zero number of sets"):
        paired([1.0, 2.0], [1.0])


def test_cli_rejects_zero_draw_sets() -> None:
    with pytest.raises(SystemExit):
        main(["--sections", "quality_sets", "--draw-sets", "0"])


@pytest.mark.parametrize("steps", [1, 2])
def test_diffusers_pipeline_runs_a_pixel_unshuffled_model_as_ours(steps: int) -> None:
    """PixelShuffledUNet lets diffusers' pipeline run a pixel_unshuffle model (the shipped ones): its samples equal
    ours from the same noise to fp32 rounding."""
    from benchmarks.speed import diffusers_pipeline
    from editing import tasks
    from editing.samplers import generators_for
    from training.nets import random_denoiser

    model = random_denoiser("tiny", 16, CLASSES, seed=0, pixel_unshuffle=2).eval().requires_grad_(False)
    assert model.param.pixel_unshuffle == 2
    schedule = uniform(steps)
    seeds = [3, 4, 5]
    pipe = diffusers_pipeline(model, schedule)
    with torch.inference_mode():
        theirs = pipe(batch_size=3, class_labels=torch.ones(3, dtype=torch.long), generator=generators_for(seeds),
                      num_inference_steps=None, timesteps=list(reversed(schedule.ts[:-1])), output_type="pt").images
        ours = (tasks.generate(model, seeds, schedule=schedule, label=1) + 1) / 2
    assert theirs.shape == ours.shape == (3, 3, 16, 16)
    assert float((theirs - ours).abs().max()) < 1e-4


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="needs Debian's chromium at /usr/bin/chromium")
def test_the_browser_section_times_live_strokes_and_skips_photos_without_a_photo_model(tmp_path: Path) -> None:
    from benchmarks.browser import STROKES, browser_tables
    from tests.app_server import make_weights

    live, photo = browser_tables(make_weights(tmp_path / "weights"), tmp_path / "no-photos")
    (model, steps, strokes, first, median, most), = live.rows
    assert model == "tiny-cm" and strokes == STROKES and 0 < median <= most and 0 < first <= 60
    assert not photo.rows and "skipped: no photo model" in photo.notes[0]
