"""Sample grids for model cards: one row block per style, columns by seed; CM at 1, 2, 4 steps (the model
folder's tuned ts where it has them, as the studio uses) and the teacher's 18-step Heun (35 evaluations).

    python -m training.samples --model weights/emoji32-cm --teacher weights/emoji32-edm --out weights/emoji32-cm/samples.png
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from editing import tasks
from editing.images import to_uint8
from editing.models import load_model, optional_schedules, resolve_runtime
from editing.precond import Denoiser
from editing.schedules import Schedule, steps_schedule


def rows_for(model: Denoiser, teacher: Denoiser | None, seeds: list[int], label: int | None,
             tuned: dict[int, Schedule]) -> list[tuple[str, np.ndarray]]:
    """(row label, images) for one class: CM (or the teacher alone) at 1, 2, 4 steps, then Heun 18 steps."""
    rows = []
    for steps in (1, 2, 4):
        schedule = steps_schedule(steps, tuned)  # 1 step is ts (0, 39)
        images = tasks.generate(model, seeds, schedule=schedule, label=label)
        rows.append((f"{steps} step{'s' if steps > 1 else ''}", to_uint8(images)))
    if teacher is not None:
        rows.append(("Heun 18 (35 NFE)", to_uint8(tasks.heun_baseline(teacher, seeds, steps=18, label=label))))
    return rows


def grid(model: Denoiser, teacher: Denoiser | None, seeds: list[int], scale: int = 2,
         tuned: dict[int, Schedule] | None = None) -> Image.Image:
    names = model.param.class_names or ("unconditional",)
    labels = list(range(len(model.param.class_names))) if model.param.class_names else [None]
    r = model.param.resolution * scale
    label_w, pad, header = 112, 4, 22  # a style's name gets a thin header row, not a full tile row
    blocks = [(name, rows_for(model, teacher, seeds, label, tuned or {})) for name, label in zip(names, labels)]
    n_tile_rows = sum(len(rows) for _, rows in blocks)
    canvas = Image.new("RGB", (label_w + len(seeds) * (r + pad), n_tile_rows * (r + pad) + len(blocks) * header),
                       "white")
    draw = ImageDraw.Draw(canvas)
    y = 0
    for name, rows in blocks:
        draw.text((4, y + 6), name, fill="black")
        draw.line((label_w, y + header // 2, canvas.width - pad, y + header // 2), fill=(200, 200, 200))
        y += header
        for row_name, images in rows:
            draw.text((4, y + r // 2 - 6), row_name, fill="black")
            for i, image in enumerate(images):
                tile = Image.fromarray(image).resize((r, r), Image.Resampling.NEAREST)
                canvas.paste(tile, (label_w + i * (r + pad), y))
            y += r + pad
    return canvas


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.samples", description=__doc__)
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--teacher", type=Path, default=None)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--seeds", type=int, default=10, help="images per row")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    runtime = resolve_runtime(args.device)
    model = load_model(args.model, runtime)
    teacher = load_model(args.teacher, runtime) if args.teacher else None
    tuned = optional_schedules(args.model, print)
    grid(model, teacher, list(range(args.seeds)), tuned=tuned).save(args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
