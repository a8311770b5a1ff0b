"""Section saved: what the user's image determines, measured on the saved 8-bit result (issue 34), with and
without the final projection onto [-1, 1] and A x = A y (editing.feasible), on held-out emoji."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from benchmarks.common import Dataset, Table, label_for, subset
from benchmarks.edits import centre_box
from editing import tasks
from editing.feasible import measured_error_levels
from editing.images import from_uint8, to_uint8
from editing.metrics import data_consistency
from editing.operators import Colorize, Inpaint, SuperResolve
from editing.precond import Denoiser
from editing.samplers import Step


def saved_table(model: Denoiser | None, why: str, data: Dataset, per_style: int) -> Table:
    """Per edit: values out of range, ||Ax - Ay|| in float and on the 8-bit result, the worst level error."""
    table = Table("saved", "The measured part in the saved 8-bit result (held-out emoji, engine defaults)",
                  ["task", "result", "values outside [-1, 1] by > 2/255", "float ||Ax - Ay|| max",
                   "8-bit ||Ax - Ay|| mean", "8-bit ||Ax - Ay|| max", "level error: mean of per-image max",
                   "level error max", "images over 1 level"])
    if model is None:
        table.notes.append(f"skipped: {why}")
        return table
    rows: dict[tuple[str, str], list[list[torch.Tensor]]] = {}
    styles = sorted(set(data.styles))
    for si, style in enumerate(styles):
        gt = subset(data.select("heldout", style), per_style, torch.Generator().manual_seed(30 + si))
        n, label, seeds, r = len(gt), label_for(model, style), list(range(len(gt))), data.resolution
        mask = centre_box(n, r)
        last: list[torch.Tensor] = []

        def keep_last(step: Step) -> None:
            last[:] = [step.x0]  # the last replaced x0: the result before the final projection

        runs = {
            "colorization": (Colorize(), lambda: tasks.colorize(model, gt, seeds, label=label, callback=keep_last)),
            "super-resolution x2": (SuperResolve(2), lambda: tasks.superresolve(
                model, F.avg_pool2d(gt, 2), 2, seeds, label=label, callback=keep_last)),
            "super-resolution x4": (SuperResolve(4), lambda: tasks.superresolve(
                model, F.avg_pool2d(gt, 4), 4, seeds, label=label, callback=keep_last)),
            "inpainting, centre box": (Inpaint(mask), lambda: tasks.inpaint(
                model, gt, mask, seeds, label=label, callback=keep_last)),
        }
        for task, (op, run) in runs.items():
            after = run().float().cpu()
            for name, out in (("replacement only (before)", last[0].float().cpu()), ("projected (now)", after)):
                saved = from_uint8(to_uint8(out))
                levels = measured_error_levels(op, saved, gt)
                rows.setdefault((task, name), []).append([
                    ((out.abs() - 1) > 2 / 255).float().flatten(1).mean(1), data_consistency(op, out, gt),
                    data_consistency(op, saved, gt), levels])
    for (task, name), parts in sorted(rows.items(), key=lambda kv: kv[0][1] != "replacement only (before)"):
        out_of_range, dc_float, dc_8, levels = (torch.cat(p) for p in zip(*parts))
        table.add(task, name, f"{100 * float(out_of_range.mean()):.2f}%", float(dc_float.max()),
                  float(dc_8.mean()), float(dc_8.max()), float(levels.mean()), float(levels.max()),
                  f"{int((levels > 1).sum())} of {len(levels)}")
    table.notes.append(f"{per_style} held-out images per style ({', '.join(styles)}), one seed each, default schedule. "
                       "Level error: the worst |a_k^T (x - y)| / a_k^T 1 per image on the 8-bit result, in 0-255 "
                       "levels: a kept pixel for inpainting, the BT.601 luma for colorization, a block mean for "
                       "super-resolution (editing.feasible.measured_error_levels). 'Before' is the last replaced x0 "
                       "(the result before issue 34), saved the same way (clipped and rounded).")
    return table
