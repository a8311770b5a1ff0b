"""Section 2, sample quality vs steps: the sliced Wasserstein distance (Karras et al. 2018, Sec. 5) and precision
and recall (Kynkaanniemi et al. 2019) of generated samples against real training images of the same style, for
the CM at 1-8 steps and the EDM teacher."""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from benchmarks.common import Budget, Dataset, Table, label_for, subset, sync
from editing import tasks
from editing.metrics import precision_recall, pyramid_levels, swd
from editing.precond import Denoiser
from editing.samplers import bind, generators_for, randn, sample_heun
from editing.schedules import PRESETS, Schedule, karras_sigmas, uniform

Sampler = Callable[[Denoiser, list[int], int | None], torch.Tensor]
PR_NEIGHBOURS = 3  # k of precision and recall's k-NN balls (the paper's choice)


def cm_schedule(steps: int) -> Schedule:
    """1 step: (0, 39); 2 steps: the paper's ImageNet-64 CD (0, 22, 39); more: evenly spread on the 40-point grid."""
    if steps == 1:
        return PRESETS["1 step"]
    if steps == 2:
        return PRESETS["ImageNet64 CD 2-step"]
    return uniform(steps, 40)


def cm_sampler(steps: int, schedule: Schedule | None = None) -> Sampler:
    schedule = schedule or cm_schedule(steps)
    return lambda model, seeds, label: tasks.generate(model, seeds, schedule=schedule, label=label)


def heun_sampler(steps: int) -> Sampler:
    """EDM Heun with `steps` levels (2 steps - 1 evaluations); 1 step is one Euler step from sigma_max: D(x, sigma_max)."""
    if steps >= 2:
        return lambda model, seeds, label: tasks.heun_baseline(model, seeds, steps=steps, label=label)

    def one(model: Denoiser, seeds: list[int], label: int | None) -> torch.Tensor:
        # heun_baseline needs >= 2 grid points; the same start noise through the public sampler, one level.
        p = model.param
        sigmas = karras_sigmas(2, p.sigma_min, p.sigma_max, p.rho)[:1].to(torch.float32)
        device = next(model.unet.parameters()).device
        x = sigmas[0] * randn((len(seeds), 3, p.resolution, p.resolution), generators_for(seeds), device)
        labels = tasks.class_labels(model, label, len(seeds))
        return sample_heun(bind(model, labels), x, sigmas)

    return one


def styles_of(data: Dataset) -> list[str]:
    return list(dict.fromkeys(data.styles))


def sample_set(model: Denoiser, sampler: Sampler, style_index: int, label: int | None, n: int, batch: int,
               device: torch.device) -> tuple[torch.Tensor, float]:
    """n samples with seeds style_index * 10^6 + i, in batches; returns them and the wall time in seconds."""
    out, seconds = [], 0.0
    seeds = [style_index * 1_000_000 + i for i in range(n)]
    for start in range(0, n, batch):
        t0 = time.perf_counter()
        out.append(sampler(model, seeds[start:start + batch], label).float().cpu())
        sync(device)
        seconds += time.perf_counter() - t0
    return torch.cat(out), seconds


def swd_row(per_style: list[dict[str, float]]) -> list[float]:
    """Mean over styles of each level's SWD, x 1e3 as in the paper's tables."""
    keys = list(per_style[0])
    return [1e3 * sum(d[k] for d in per_style) / len(per_style) for k in keys]


def quality_table(models: list[tuple[str, Denoiser | None, str, list[tuple[str, int, Sampler]]]],
                  data: Dataset, device: torch.device, budget: Budget) -> Table:
    """Rows: real reference, then for each model each (name, evaluations, sampler); SWD per level, precision and
    recall, ms per image."""
    levels = [str(data.resolution >> i) for i in range(pyramid_levels(data.resolution))]
    table = Table("quality", "Sample quality vs steps: SWD x 1e3 to real training images of the same style",
                  ["model", "sampler", "evaluations"] + [f"SWD {lv}px" for lv in levels]
                  + ["SWD mean", "precision", "recall", "ms / image"])
    styles = styles_of(data)[: budget.quality_styles]
    n = budget.samples_per_style
    real = {s: subset(data.select("train", s), n, torch.Generator().manual_seed(10 + i)) for i, s in enumerate(styles)}

    def distance(fake: dict[str, torch.Tensor]) -> list[float]:
        per = [swd(fake[s], real[s], torch.Generator().manual_seed(1234), per_image=budget.swd_per_image)
               for s in styles]
        if min(len(fake[s]) for s in styles) <= PR_NEIGHBOURS or min(len(real[s]) for s in styles) <= PR_NEIGHBOURS:
            return swd_row(per) + [None, None]  # too few images for k-NN balls (the tests' tiny budget)
        pr = [precision_recall(real[s], fake[s], k=PR_NEIGHBOURS) for s in styles]
        return swd_row(per) + [sum(p for p, _ in pr) / len(pr), sum(r for _, r in pr) / len(pr)]

    # The floor: real held-out images (never trained on) against the training images.
    held = {s: subset(data.select("heldout", s), n, torch.Generator().manual_seed(20 + i)) for i, s in enumerate(styles)}
    if all(len(h) >= 2 for h in held.values()):
        table.add("real held-out images", "—", 0, *distance(held), None)
    for model_name, model, why, rows in models:
        if model is None:
            table.notes.append(f"{model_name} rows skipped: {why}.")
            continue
        if model.param.resolution != data.resolution:
            table.notes.append(f"{model_name} rows skipped: model is {model.param.resolution}px, data "
                               f"{data.resolution}px.")
            continue
        for sampler_name, evaluations, sampler in rows:
            fake, seconds, count = {}, 0.0, 0
            for i, s in enumerate(styles):
                fake[s], sec = sample_set(model, sampler, i, label_for(model, s), n, budget.sample_batch, device)
                seconds, count = seconds + sec, count + len(fake[s])
            table.add(model_name, sampler_name, evaluations, *distance(fake), 1e3 * seconds / count)
    table.notes.append(f"{n} samples per style ({', '.join(styles)}) against {n} random training images of that "
                       "style (fewer where the split has fewer); the SWD is averaged over styles. Lower is better.")
    table.notes.append("SWD: 7x7 neighbourhoods of a Laplacian pyramid, normalised per level and channel, 512 random "
                       f"directions (4 x 128), {budget.swd_per_image} neighbourhoods per image and level. 32 px images "
                       "have the levels 32, 16 and 8 (the paper's 16 px minimum would leave two).")
    table.notes.append(f"Precision and recall (Kynkaanniemi et al. 2019, k = {PR_NEIGHBOURS}, in pixel space, mean over "
                       "styles; higher is better): the fraction of samples within some training image's k-NN ball "
                       "(fidelity: samples that look like some emoji), and of training images within some sample's "
                       "(coverage).")
    table.notes.append("CM schedules: 1 step (0, 39); 2 steps (0, 22, 39); 4 and 8 steps evenly spread on the "
                       "40-point Karras grid; 'tuned ts' rows use the model folder's schedules.json (greedy search "
                       "by python -m training.tune_ts on other seeds and reference draws). Teacher: EDM Heun on an "
                       "N-level Karras grid, 2N - 1 evaluations; 1 level = one Euler step from sigma_max, i.e. the "
                       "denoiser's D(x, sigma_max).")
    table.notes.append("Same seeds (start noise) for every row; time per image at batch "
                       f"{budget.sample_batch}, the app's runtime.")
    return table


def cm_rows(budget: Budget, tuned: dict[int, Schedule] | None = None) -> list[tuple[str, int, Sampler]]:
    """The fixed schedules of every step count, then the model's tuned ones (schedules.json) where it has them."""
    rows = [(f"{k} step{'s' if k > 1 else ''}", k, cm_sampler(k)) for k in budget.cm_steps]
    tuned = tuned or {}
    rows += [(f"{k} steps, tuned ts {list(tuned[k].ts)}", k, cm_sampler(k, tuned[k]))
             for k in budget.cm_steps if k > 1 and k in tuned and tuned[k] != cm_schedule(k)]
    return rows


def teacher_rows(budget: Budget) -> list[tuple[str, int, Sampler]]:
    return [(f"Heun {k} step{'s' if k > 1 else ''}", 2 * k - 1, heun_sampler(k)) for k in budget.teacher_steps]
