"""Section 2, sample quality vs steps: the sliced Wasserstein distance (Karras et al. 2018, Sec. 5) and precision
and recall (Kynkaanniemi et al. 2019) of generated samples against real training images of the same style, for
the CM at 1-8 steps and the EDM teacher; and the same measure over several independent draw sets, to tell a
difference between samplers from the noise of one draw."""

from __future__ import annotations

import math
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass

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


@dataclass(frozen=True)
class DrawSet:
    """Every random draw of one quality measurement: sample seeds, reference images, SWD directions.

    Set 0 is the quality table's; set r > 0 draws anew (seeds from r * 10^8 up, so never tune_ts' 7 * 10^6 + ...)."""

    index: int = 0

    def seeds(self, style_index: int, n: int) -> list[int]:
        return [self.index * 100_000_000 + style_index * 1_000_000 + i for i in range(n)]

    def references(self, style_index: int) -> torch.Generator:
        return torch.Generator().manual_seed(10 + style_index + 1000 * self.index)

    def directions(self) -> torch.Generator:
        return torch.Generator().manual_seed(1234 + self.index)


def sample_set(model: Denoiser, sampler: Sampler, style_index: int, label: int | None, n: int, batch: int,
               device: torch.device, draw: DrawSet = DrawSet()) -> tuple[torch.Tensor, float]:
    """n samples with the draw set's seeds (set 0: style_index * 10^6 + i), in batches; returns them and the wall
    time in seconds."""
    out, seconds = [], 0.0
    seeds = draw.seeds(style_index, n)
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


ModelRows = list[tuple[str, Denoiser | None, str, list[tuple[str, int, Sampler]]]]


@dataclass
class Measure:
    """SWD (per level and mean, x 1e3), precision and recall of samples against one draw set's references."""

    data: Dataset
    styles: list[str]
    budget: Budget
    draw: DrawSet

    def __post_init__(self) -> None:
        n = self.budget.samples_per_style
        self.real = {s: subset(self.data.select("train", s), n, self.draw.references(i))
                     for i, s in enumerate(self.styles)}

    def distance(self, fake: dict[str, torch.Tensor]) -> list[float | None]:
        per = [swd(fake[s], self.real[s], self.draw.directions(), per_image=self.budget.swd_per_image)
               for s in self.styles]
        if min(len(fake[s]) for s in self.styles) <= PR_NEIGHBOURS or \
                min(len(self.real[s]) for s in self.styles) <= PR_NEIGHBOURS:
            return swd_row(per) + [None, None]  # too few images for k-NN balls (the tests' tiny budget)
        pr = [precision_recall(self.real[s], fake[s], k=PR_NEIGHBOURS) for s in self.styles]
        return swd_row(per) + [sum(p for p, _ in pr) / len(pr), sum(r for _, r in pr) / len(pr)]

    def samples(self, model: Denoiser, sampler: Sampler, device: torch.device) -> tuple[dict[str, torch.Tensor], float]:
        """The sampler's images per style on this set's seeds, and the wall time per image in ms."""
        fake, seconds, count = {}, 0.0, 0
        for i, s in enumerate(self.styles):
            fake[s], sec = sample_set(model, sampler, i, label_for(model, s), self.budget.samples_per_style,
                                      self.budget.sample_batch, device, self.draw)
            seconds, count = seconds + sec, count + len(fake[s])
        return fake, 1e3 * seconds / count


def usable(models: ModelRows, data: Dataset, notes: list[str]) -> list[tuple[str, Denoiser, list]]:
    """The models that can be sampled at the data's resolution; a note for each that cannot."""
    out = []
    for model_name, model, why, rows in models:
        if model is None:
            notes.append(f"{model_name} rows skipped: {why}.")
        elif model.param.resolution != data.resolution:
            notes.append(f"{model_name} rows skipped: model is {model.param.resolution}px, data "
                         f"{data.resolution}px.")
        else:
            out.append((model_name, model, rows))
    return out


def quality_table(models: ModelRows, data: Dataset, device: torch.device, budget: Budget) -> Table:
    """Rows: real reference, then for each model each (name, evaluations, sampler); SWD per level, precision and
    recall, ms per image."""
    levels = [str(data.resolution >> i) for i in range(pyramid_levels(data.resolution))]
    table = Table("quality", "Sample quality vs steps: SWD x 1e3 to real training images of the same style",
                  ["model", "sampler", "evaluations"] + [f"SWD {lv}px" for lv in levels]
                  + ["SWD mean", "precision", "recall", "ms / image"])
    styles = styles_of(data)[: budget.quality_styles]
    n = budget.samples_per_style
    measure = Measure(data, styles, budget, DrawSet(0))

    # The floor: real held-out images (never trained on) against the training images.
    held = {s: subset(data.select("heldout", s), n, torch.Generator().manual_seed(20 + i)) for i, s in enumerate(styles)}
    if all(len(h) >= 2 for h in held.values()):
        table.add("real held-out images", "—", 0, *measure.distance(held), None)
    for model_name, model, rows in usable(models, data, table.notes):
        for sampler_name, evaluations, sampler in rows:
            fake, ms = measure.samples(model, sampler, device)
            table.add(model_name, sampler_name, evaluations, *measure.distance(fake), ms)
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


@dataclass(frozen=True)
class Paired:
    """A sampler's per-set values against a baseline's on the same draw sets (lower is better)."""

    mean: float
    sd: float  # sample standard deviation over sets (n - 1); nan with one set
    diff_mean: float  # mean of (value - baseline) over sets
    diff_se: float  # its standard error, sd of the differences / sqrt(sets); nan with one set
    below: int  # sets where the value is below the baseline's


def paired(values: list[float], baseline: list[float]) -> Paired:
    """Mean and spread of `values`, and of its differences to `baseline` set by set (a paired comparison: both
    saw the same references, SWD directions and start noise, so the draw's share of the noise cancels)."""
    if len(values) != len(baseline) or not values:
        raise ValueError(f"paired values need the same non-zero number of sets, got {len(values)} and {len(baseline)}")
    diffs = [v - b for v, b in zip(values, baseline)]
    spread = len(values) > 1
    return Paired(statistics.fmean(values), statistics.stdev(values) if spread else math.nan,
                  statistics.fmean(diffs), statistics.stdev(diffs) / math.sqrt(len(diffs)) if spread else math.nan,
                  sum(d < 0 for d in diffs))


def sets_table(models: ModelRows, data: Dataset, device: torch.device, budget: Budget) -> Table:
    """SWD mean, precision and recall of each (model, sampler) over `budget.draw_sets` independent draw sets, and
    the paired difference to the first row (the CM's 1 step)."""
    if budget.draw_sets < 1:
        raise ValueError(f"draw_sets must be >= 1, got {budget.draw_sets}")
    table = Table("quality_sets", f"Sample quality over {budget.draw_sets} independent draw sets: SWD mean x 1e3, "
                  "paired with the first row", ["model", "sampler", "evaluations", "SWD mean per set", "SWD mean",
                                                "sd", "Δ vs first row", "s.e. of Δ", "sets below first row",
                                                "precision", "recall"])
    styles = styles_of(data)[: budget.quality_styles]
    measures = [Measure(data, styles, budget, DrawSet(r)) for r in range(budget.draw_sets)]
    results: list[tuple[str, str, int, list[list[float | None]]]] = []
    for model_name, model, rows in usable(models, data, table.notes):
        for sampler_name, evaluations, sampler in rows:
            per_set = []
            for m in measures:
                fake, _ = m.samples(model, sampler, device)
                per_set.append(m.distance(fake)[-3:])  # SWD mean, precision, recall
            results.append((model_name, sampler_name, evaluations, per_set))
            print(f"[benchmarks] quality_sets {model_name} {sampler_name}: "
                  + " ".join(f"{v[0]:.2f}" for v in per_set), flush=True)
    if not results:
        return table
    baseline = [v[0] for v in results[0][3]]

    def mean_of(column: list[float | None]) -> float | None:
        return None if any(c is None for c in column) else statistics.fmean(column)

    for i, (model_name, sampler_name, evaluations, per_set) in enumerate(results):
        swds = [v[0] for v in per_set]
        p = paired(swds, baseline)
        first = i == 0
        table.add(model_name, sampler_name, evaluations, " / ".join(f"{v:.1f}" for v in swds), p.mean, p.sd,
                  None if first else p.diff_mean, None if first else p.diff_se,
                  None if first else f"{p.below} / {len(swds)}",
                  mean_of([v[1] for v in per_set]), mean_of([v[2] for v in per_set]))
    table.notes.append(f"Draw set r: sample seeds r * 10^8 + style * 10^6 + i, its own {budget.samples_per_style} "
                       "training references per style and its own SWD directions; set 0 is the quality table's "
                       "draw, so its column repeats that table's SWD mean. Every row sees the same sets.")
    table.notes.append("Δ: mean over sets of (row - first row) on the same set, with its standard error (sd of the "
                       "differences / sqrt(sets)); a Δ below 0 by more than about two s.e. is a difference the draw "
                       "does not explain. Lower SWD is better.")
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
