"""Shared pieces of the benchmark: run budgets, tables, timing, the machine, the data and model folders."""

from __future__ import annotations

import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from editing.images import from_uint8
from editing.models import ModelLoadError, Runtime, cpu_has_amx, load_model, resolve_runtime
from editing.precond import Denoiser
from editing.runtimes import DEFAULT_BACKEND
from training.data import read_folder


@dataclass(frozen=True)
class Budget:
    """How much work each section does; `QUICK` must finish in under 5 minutes on 2 CPU cores."""

    reps: int = 10  # timed repetitions (the best is reported), after one warm-up call
    speed_batches: tuple[int, ...] = (1, 8, 64)  # the speed table adds the engine's tile batch
    diffusers_batches: tuple[int, ...] = (1, 64)  # batches of the side-by-side run with diffusers' pipeline
    runtimes: bool = True  # speed and diffusers tables also time the UNet converted to ONNX Runtime and OpenVINO
    speed_tile_batch: bool = True  # the speed table also times the engine's tile batch (editing.tiling)
    scaling_batches: tuple[int, ...] = (1, 2, 4, 8, 16, 32, 64)
    samples_per_style: int = 256  # generated (and real) images per style for the SWD of section 2
    quality_styles: int = 3  # how many styles section 2 samples
    sample_batch: int = 64
    edit_images_per_style: int = 32  # held-out images per style for section 3
    edit_styles: int = 3  # how many styles the held-out images come from
    cm_steps: tuple[int, ...] = (1, 2, 4, 8)
    teacher_steps: tuple[int, ...] = (1, 2, 3, 4, 18)
    noise_levels: tuple[float, ...] = (0.1, 0.2, 0.4)  # Gaussian std on the [-1, 1] scale
    swd_per_image: int = 128  # neighbourhoods per image and level (Karras et al. 2018 use 128)
    draw_sets: int = 5  # independent draw sets of the quality_sets section
    sets_cm_steps: tuple[int, ...] = (1, 2, 4)  # CM step counts it repeats (fixed and tuned ts)
    sets_teacher_steps: tuple[int, ...] = (18,)
    measure_256: bool = True  # time one evaluation of the 256x256 bedroom UNet (else: FLOPs and an estimate)


FULL = Budget()
QUICK = Budget(
    reps=3, speed_batches=(1, 8), diffusers_batches=(1, 8), scaling_batches=(1, 4, 16), samples_per_style=16,
    quality_styles=1, sample_batch=16,
    edit_images_per_style=8, edit_styles=1, cm_steps=(1, 2, 4, 8), teacher_steps=(1, 2, 18), noise_levels=(0.1, 0.3),
    swd_per_image=64, measure_256=False, draw_sets=2, sets_cm_steps=(1, 2),
    sets_teacher_steps=(18,),
)


@dataclass
class Table:
    """One results table: a title, column names, rows of values, and notes printed under it."""

    key: str
    title: str
    columns: list[str]
    rows: list[list[Any]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    run: str = ""  # the run these numbers come from (date, machine, model), shown under the title

    @classmethod
    def from_dict(cls, key: str, data: dict) -> "Table":
        return cls(key, data["title"], data["columns"], data["rows"], data["notes"], data.get("run", ""))

    def add(self, *values: Any) -> None:
        assert len(values) == len(self.columns), (values, self.columns)
        self.rows.append(list(values))

    def markdown(self) -> str:
        lines = [f"### {self.title}", ""]
        if self.run:
            lines += [f"*Run: {self.run}*", ""]
        if self.rows:
            lines.append("| " + " | ".join(self.columns) + " |")
            lines.append("|" + "---|" * len(self.columns))
            lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in self.rows]
            lines.append("")
        lines += [f"- {n}" for n in self.notes]
        return "\n".join(lines).rstrip() + "\n"

    def to_dict(self) -> dict:
        return {"title": self.title, "columns": self.columns, "rows": [[jsonable(v) for v in r] for r in self.rows],
                "notes": self.notes, "run": self.run}


def fmt(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        if value != value:
            return "—"
        if value in (float("inf"), float("-inf")):
            return "∞"
        if abs(value) >= 1000:
            return f"{value:,.0f}"
        if abs(value) >= 100:
            return f"{value:.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        if abs(value) >= 0.01 or value == 0:
            return f"{value:.2f}"
        return f"{value:.1e}"
    return str(value)


def jsonable(value: Any) -> Any:
    if isinstance(value, float) and (value != value or value in (float("inf"), float("-inf"))):
        return str(value)
    return value


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_ms(fn: Callable[[], Any], device: torch.device, reps: int, warmup: int = 1) -> float:
    """Best (minimum) wall time of fn() in milliseconds over `reps` calls, after `warmup` untimed calls.

    The minimum, not the median: on a shared machine other processes only ever add time."""
    with torch.inference_mode():
        for _ in range(warmup):
            fn()
        sync(device)
        times = []
        for _ in range(max(1, reps)):
            start = time.perf_counter()
            fn()
            sync(device)
            times.append((time.perf_counter() - start) * 1e3)
    return min(times)


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine(device: torch.device, dtype_note: str) -> dict[str, Any]:
    """The date and machine the numbers come from."""
    import diffusers

    info = {
        "date": time.strftime("%Y-%m-%d %H:%M:%S %Z"),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "cpu_amx": cpu_has_amx(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "diffusers": diffusers.__version__,
        "device": str(device),
        "dtype": dtype_note,
        "python": platform.python_version(),
    }
    if device.type == "cuda":
        info["gpu"] = torch.cuda.get_device_name(device)
    try:
        info["load_average"] = " ".join(f"{x:.1f}" for x in os.getloadavg())
    except OSError:
        pass
    return info


def default_runtime(device: torch.device) -> Runtime:
    """The app's runtime (editing.models.resolve_runtime): fp16 weights on CUDA; on CPU fp32 through the default
    converted runtime (editing.runtimes.DEFAULT_BACKEND), tiled models under bf16 where the CPU has it natively,
    as the studio and the CLI run them."""
    return resolve_runtime(str(device), backend=DEFAULT_BACKEND, precision="auto")


def try_load(folder: Path | None, runtime: Runtime) -> tuple[Denoiser | None, str]:
    """The model, or None and why not (so a table can say which rows were skipped)."""
    if folder is None:
        return None, "not given"
    if not folder.exists():
        return None, f"{folder} not found"
    try:
        return load_model(folder, runtime), ""
    except ModelLoadError as e:
        return None, str(e)


@dataclass(frozen=True)
class Dataset:
    """data/emoji32 as tensors in [-1, 1] with the index records."""

    images: torch.Tensor  # (N, 3, H, W) float32 in [-1, 1]
    styles: list[str]
    splits: list[str]

    @property
    def resolution(self) -> int:
        return int(self.images.shape[-1])

    def select(self, split: str, style: str | None = None) -> torch.Tensor:
        rows = [i for i, (sp, st) in enumerate(zip(self.splits, self.styles))
                if sp == split and (style is None or st == style)]
        return self.images[rows]


def load_dataset(folder: Path) -> Dataset:
    """images.npy (uint8 N x H x W x 3) and index.jsonl from `python -m training.data build`."""
    array, records = read_folder(folder)
    return Dataset(from_uint8(np.array(array)), [r["style"] for r in records], [r["split"] for r in records])


def subset(images: torch.Tensor, n: int, generator: torch.Generator) -> torch.Tensor:
    """n images drawn without replacement (all of them if fewer)."""
    if len(images) <= n:
        return images
    return images[torch.randperm(len(images), generator=generator)[:n]]


def label_for(model: Denoiser, style: str) -> int | None:
    """The class index of `style` for a conditional model, None for an unconditional one."""
    names = model.param.class_names
    if not names:
        return None
    if style not in names:
        raise ValueError(f"the model's classes {names} do not include the style {style!r}")
    return names.index(style)
