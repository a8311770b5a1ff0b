"""Run the five sections and write RESULTS.md / RESULTS.json (RESULTS-quick.* for --quick runs)."""

from __future__ import annotations

import json
import sys
import time
import copy
import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch

from benchmarks import edits, photos, quality, scaling, speed, whole_photos
from benchmarks.common import FULL, QUICK, Budget, Table, default_runtime, load_dataset, machine, try_load
from editing.models import Runtime, optional_schedules
from editing.precond import Denoiser
from editing.runtimes import eager_unet, installed_backend
from training.nets import random_denoiser

SECTIONS = ("speed", "quality", "quality_sets", "edits", "scaling", "photo_speed", "photo_crops", "photos", "load",
            "noise", "jpeg_noise", "camera_noise", "demosaiced_noise", "saved", "browser")


@dataclass(frozen=True)
class Options:
    """What to benchmark and where to write; `budget` overrides the quick/full preset (tests use a tiny one)."""

    model: Path | None = Path("weights/emoji32-cm")
    teacher: Path | None = Path("weights/emoji32-edm")
    data: Path = Path("data/emoji32")
    device: str = "cpu"
    quick: bool = False
    out_dir: Path = Path("benchmarks")
    sections: tuple[str, ...] = SECTIONS
    budget: Budget | None = None
    draw_sets: int | None = None  # replaces the budget's draw_sets (quality_sets section) when given
    threads: int | None = None  # torch.set_num_threads; None keeps torch's default (one per core)
    photo_model: Path | None = Path("weights/photo64-cm")  # the photo_crops section's models and data
    photo_teacher: Path | None = Path("weights/photo64-edm")
    photo_data: Path = Path("data/photos")
    crops_dir: Path | None = Path("docs/photos")  # the photos section's before/after crops (None: not written)


def tiny_random(resolution: int, classes: tuple[str, ...], device: torch.device) -> Denoiser:
    """The test preset's UNet at `resolution`, random weights perturbed so the output is not zero."""
    return random_denoiser("tiny", resolution, classes, seed=0, perturb=0.05).to(device).eval().requires_grad_(False)


def tuned_schedules(model_dir: Path | None) -> dict:
    """The folder's schedules.json ({} when it has none; a broken one is reported and the fixed rows still run)."""
    if model_dir is None:
        return {}
    return optional_schedules(model_dir, lambda message: print(f"[benchmarks] {message}; tuned-ts rows skipped",
                                                               file=sys.stderr))


def run(options: Options) -> dict:
    """All sections in one process; returns the JSON document it writes."""
    started = time.perf_counter()
    budget = options.budget or (QUICK if options.quick else FULL)
    if options.draw_sets is not None:
        budget = dataclasses.replace(budget, draw_sets=options.draw_sets)
    device = torch.device(options.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda was asked for but CUDA is not available")
    if options.threads is not None:
        if options.threads < 1:
            raise ValueError(f"--threads must be >= 1, got {options.threads}")
        torch.set_num_threads(options.threads)
    runtime = default_runtime(device)
    model, why_model = try_load(options.model, runtime)
    teacher, why_teacher = try_load(options.teacher, runtime)
    runtime_note = note_of(runtime, tiled=bool((model or teacher) and (model or teacher).param.tiled))
    model_name = options.model.name if options.model else "model"
    teacher_name = options.teacher.name if options.teacher else "teacher"
    info = machine(device, runtime_note)
    info["model"] = f"{options.model} ({'loaded' if model else why_model})"
    info["teacher"] = f"{options.teacher} ({'loaded' if teacher else why_teacher})"
    info["mode"] = "quick" if options.quick else ("custom" if options.budget else "full")
    if "quality_sets" in options.sections:
        info["draw_sets"] = budget.draw_sets
    tables: list[Table] = []

    def section(name: str) -> bool:
        if name in options.sections:
            print(f"[benchmarks] {name} ({time.perf_counter() - started:.0f} s)", flush=True)
            return True
        return False

    net, net_name = (model, model_name) if model is not None else (teacher, teacher_name)
    if section("speed"):
        if net is None:
            tables.append(Table("speed", "Speed", [], notes=[f"skipped: no model ({why_model}; {why_teacher})"]))
        else:
            tables.append(speed.speed_table(net, device, budget, net_name))
        if model is not None:
            if device.type == "cpu":
                tables.append(speed.threads_table(model, device, budget, model_name))
            tables.append(speed.overhead_table(model, device, budget))
        res = net.param.resolution if net is not None else 32
        classes = net.param.class_names if net is not None else ()
        compared: list[tuple[str, Denoiser]] = []
        if model is not None:  # the shipped model itself, in fp32 eager (each runtime is built from it)
            compared.append((model_name, Denoiser(copy.deepcopy(eager_unet(model.unet)).float(), model.param, None)))
        compared.append((f"tiny preset {res}px, random weights", tiny_random(res, classes, device)))
        tables.append(speed.diffusers_table(compared, device, budget))
        if model is not None:
            tables.append(speed.tasks_table(model, teacher, device, budget))
        else:
            tables.append(Table("tasks", "Wall time of every task", [], notes=[f"skipped: {why_model}"]))

    data = None
    if any(s in options.sections for s in ("quality", "quality_sets", "edits", "saved")):
        try:
            data = load_dataset(options.data)
        except (OSError, ValueError) as e:
            tables.append(Table("data", "Data", [], notes=[f"quality and editing sections skipped: {e}"]))
    if data is not None and section("quality"):
        rows: list = [(model_name, model, why_model, quality.cm_rows(budget, tuned_schedules(options.model)))]
        rows.append((teacher_name, teacher, why_teacher, quality.teacher_rows(budget)))
        tables.append(quality.quality_table(rows, data, device, budget))
    if data is not None and section("quality_sets"):
        sets_budget = dataclasses.replace(budget, cm_steps=budget.sets_cm_steps, teacher_steps=budget.sets_teacher_steps)
        rows = [(model_name, model, why_model, quality.cm_rows(sets_budget, tuned_schedules(options.model))),
                (teacher_name, teacher, why_teacher, quality.teacher_rows(sets_budget))]
        tables.append(quality.sets_table(rows, data, device, sets_budget))
    if data is not None and section("edits"):
        tables.append(edits.edit_table(model, model_name, why_model, data, device, budget))
    if section("scaling"):
        if net is not None:
            tables.append(scaling.batch_table(net, device, budget, net_name, runtime_note))
        tables.append(scaling.resolution_table(net, device, budget, runtime.autocast_dtype, runtime.weight_dtype,
                                               runtime_note, net_name))
    if section("photo_speed"):  # the photo model's network by runtime, and a whole photo's denoise vs CBM3D
        photo, why_photo = try_load(options.photo_model, runtime)
        if photo is not None:
            tables.append(speed.speed_table(photo, device, budget, options.photo_model.name, key="photo_speed"))
        else:
            tables.append(Table("photo_speed", "Photo model speed", [], notes=[f"skipped: {why_photo}"]))
        tables.append(speed.whole_photo_denoise_table(options.photo_teacher, options.photo_data, device,
                                                      256 if options.quick else 1024, 1 if options.quick else 2))
    if section("photo_crops"):
        tables += photo_tables(options, runtime)
    if section("photos"):
        tables += photo_tables(options, runtime, whole=True)
    if section("load"):  # the studio (app.py) on the model's weights folder, under many clients
        from benchmarks.load import load_tables

        tables += load_tables(options.model.parent if options.model else Path("weights"))
    if section("browser"):  # issue 32: the studio in headless Chromium, timed as its user sees it
        from benchmarks.browser import browser_tables

        tables += browser_tables(options.model.parent if options.model else Path("weights"), options.photo_data)
    if section("noise"):  # issue 34: the blind noise estimate on held-out emoji and photo crops (PNG and JPEG)
        from benchmarks.noise import denoise_table, large_photo_table, noise_table, photo_denoise_table

        try:
            noise_data = data or load_dataset(options.data)
        except (OSError, ValueError):
            noise_data = None
        few = budget is QUICK
        tables.append(noise_table(noise_data, options.photo_data, 16 if few else 64, 1 if few else 4))
        if noise_data is not None:
            tables.append(denoise_table(model, why_model, noise_data, 8 if few else 32))
        photo_teacher, why_photo_teacher = try_load(options.photo_teacher, runtime)
        tables.append(photo_denoise_table(photo_teacher, why_photo_teacher, options.photo_data, 1 if few else 4))
        tables.append(large_photo_table(options.photo_data))
    if section("jpeg_noise"):  # a colour JPEG's noise: the bootstrap's level vs the mean under added noise
        from benchmarks.noise import jpeg_noise_table

        photo_teacher, why_photo_teacher = try_load(options.photo_teacher, runtime)
        tables.append(jpeg_noise_table(photo_teacher, why_photo_teacher, options.photo_data,
                                       1 if budget is QUICK else 2))
    if section("camera_noise"):  # a camera's noise, larger in the shadows: one level vs its curve
        from benchmarks.noise import camera_noise_table

        photo_teacher, why_photo_teacher = try_load(options.photo_teacher, runtime)
        tables.append(camera_noise_table(photo_teacher, why_photo_teacher, options.photo_data,
                                         1 if budget is QUICK else 4, None if budget is QUICK else options.crops_dir))
    if section("demosaiced_noise"):  # and after demosaicing, spread over neighbouring pixels
        from benchmarks.noise import demosaiced_noise_table, spread_reading_table

        photo_teacher, why_photo_teacher = try_load(options.photo_teacher, runtime)
        tables.append(demosaiced_noise_table(photo_teacher, why_photo_teacher, options.photo_data,
                                             1 if budget is QUICK else 2,
                                             None if budget is QUICK else options.crops_dir))
        tables.append(spread_reading_table(options.photo_data, 1 if budget is QUICK else 2))
    if data is not None and section("saved"):  # issue 34: A x = A y in the 8-bit result
        from benchmarks.feasible import saved_table

        tables.append(saved_table(model, why_model, data, 8 if budget is QUICK else 32))
    info["seconds"] = round(time.perf_counter() - started, 1)
    photo_note = note_of(runtime, tiled=True)  # the photo models are tiled
    stamp = run_stamp(info)
    for t in tables:
        t.run = stamp
        if t.key.startswith("photo"):  # these tables are of the photo models, not the emoji model the stamp names
            t.run = f"{info['date']}, {info['cpu']}, {photo_note}, photo models {options.photo_model}, " \
                    f"{options.photo_teacher}"
    if set(options.sections) != set(SECTIONS):
        tables = merged(results_path(options, ".json"), tables)
    document = {"machine": info, "tables": {t.key: t.to_dict() for t in tables}}
    write(options, document, tables)
    return document


def note_of(runtime: Runtime, tiled: bool) -> str:
    """How a model (`tiled` or not) runs under `runtime`: weights' dtype, autocast and the CPU runtime."""
    if runtime.device.type == "cuda":
        return "fp16 weights"
    if runtime.autocast_dtype is not None or (tiled and runtime.tiled_autocast_dtype is not None):
        return "fp32 weights, bf16 autocast"
    if runtime.converted_dtype == torch.bfloat16:
        return "bf16, openvino"
    return f"fp32, {installed_backend(runtime.backend)}"


def photo_tables(options: Options, runtime: Runtime, whole: bool = False) -> list[Table]:
    """The photo_crops section (held-out photo crops) or, `whole`, the photos section (whole held-out photos):
    the photo models, either of which may be missing."""
    if not (options.photo_data / "manifest.jsonl").is_file():
        return [Table("photos" if whole else "photo_crops", "Photo model on held-out photos", [],
                      notes=[f"skipped: no {options.photo_data} (python -m training.photos build --out "
                             f"{options.photo_data})"])]
    cm, _ = try_load(options.photo_model, runtime)
    teacher, _ = try_load(options.photo_teacher, runtime)
    names = (options.photo_model.name if options.photo_model else "cm",
             options.photo_teacher.name if options.photo_teacher else "teacher")
    if whole:
        return whole_photos.photos_tables(cm, teacher, options.photo_data, runtime.device,
                                          whole_photos.WHOLE_QUICK if options.quick else whole_photos.WHOLE_FULL,
                                          names, None if options.quick else options.crops_dir)
    budget = photos.PHOTO_QUICK if options.quick else photos.PHOTO_FULL
    return photos.photo_crops_tables(cm, teacher, options.photo_data, runtime.device, budget, names)


def run_stamp(info: dict) -> str:
    """One line naming the run a table comes from, so merged results say which numbers are whose."""
    return f"{info['date']}, {info['cpu']}, {info['dtype']}, model {info['model']}"


def merged(previous: Path, tables: list[Table]) -> list[Table]:
    """A partial run's tables in place of the same tables of the previous results; the others kept as they were.

    Retraining a model only needs its quality section rerun: the speed and editing tables of the last full
    run stay, each still naming the run it came from."""
    if not previous.is_file():
        return tables
    try:
        old = json.loads(previous.read_text())
        stamp = run_stamp(old["machine"])
        kept = [Table.from_dict(key, data) for key, data in old["tables"].items()]
    except (OSError, ValueError, KeyError, TypeError) as e:
        print(f"[benchmarks] not merging into {previous} ({e}); writing this run's tables only", flush=True)
        return tables
    new = {t.key: t for t in tables}
    out = [new.pop(t.key, t) for t in kept]
    for t in out:
        t.run = t.run or stamp  # tables written before tables carried their own stamp
    return out + list(new.values())


def results_path(options: Options, suffix: str) -> Path:
    return options.out_dir / (("RESULTS-quick" if options.quick else "RESULTS") + suffix)


def markdown(info: dict, tables: list[Table]) -> str:
    lines = ["# Benchmarks", "", "Written by `python -m benchmarks" + (" --quick" if info["mode"] == "quick" else "")
             + "` (issue 6). The latest run (a run of some `--sections` replaces those tables and keeps the "
             "others; each table names its run under its title):", ""]
    lines += [f"- **{k}**: {v}" for k, v in info.items()]
    lines.append("")
    for t in tables:
        lines.append(t.markdown())
    return "\n".join(lines)


def write(options: Options, document: dict, tables: list[Table]) -> None:
    options.out_dir.mkdir(parents=True, exist_ok=True)
    text = markdown(document["machine"], tables)
    results_path(options, ".md").write_text(text)
    results_path(options, ".json").write_text(json.dumps(document, indent=1) + "\n")
    print(text, flush=True)


__all__ = ["Options", "SECTIONS", "run"]
