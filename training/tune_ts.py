"""Tune a consistency model's multistep schedules: greedy search for ts, scored by sample quality.

The paper picks its multistep ts by greedy search (Song et al. 2023, Sec. 6: "we use a greedy algorithm
to find the best ts"). Evenly spread ts are a poor default for a distilled model whose every step drifts a
little (ours: SWD x 1e3 of 39.8 at 4 even steps but 63.5 at 8), so we grow the schedule one index at a time:
the best k-step ts is the best (k-1)-step ts plus the one index that scores best. The result goes into the
model folder as `schedules.json` (editing.models.read_schedules), which the studio and the CLI use for
"k steps".

    python -m training.tune_ts --model weights/emoji32-cm --data data/emoji32 --max-steps 8

Scoring: the SWD (editing.metrics.swd) of samples of every style against training images of that style,
with seeds and reference draws of their own, so the benchmark's draws stay unseen by the tuning.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from pathlib import Path

import torch

from editing import tasks
from editing.metrics import swd
from editing.models import SCHEDULES_NAME, load_model, read_schedules, resolve_runtime
from editing.precond import Denoiser
from editing.schedules import Schedule
from training.data import STYLES
from training.train import load_dataset

SEED_BASE = 7_000_000  # sample seeds: style * 10^5 + i above this (the benchmark uses style * 10^6 + i)


def greedy_ts(score: Callable[[Schedule], float], n: int, max_steps: int, stride: int = 3,
              log: Callable[[str], None] = print,
              done: list[tuple[Schedule, float]] | None = None) -> list[tuple[Schedule, float]]:
    """[(best k-step schedule, its score) for k = 1..max_steps]; lower scores are better.

    Each step tries every `stride`-th free index of the grid, then the free neighbours of the best one, so
    a step costs about n / stride + 2 scores instead of n. `done` (the results for k = 1..m of an earlier
    search with the same score) continues that search from m + 1: the search is deterministic, so the
    result equals one uninterrupted run.
    """
    if not 1 <= max_steps <= n - 1:
        raise ValueError(f"max_steps must be between 1 and {n - 1} on a {n}-point grid, got {max_steps}")
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    if done:
        if [s.evaluations for s, _ in done] != list(range(1, len(done) + 1)) or done[0][0].n != n:
            raise ValueError(f"done must hold the schedules of 1..m steps on a {n}-point grid")
        results = list(done[:max_steps])
    else:
        one_step = Schedule((0, n - 1), n)
        results = [(one_step, score(one_step))]
        log(f"1 step  {list(one_step.ts)}  {results[0][1]:.5f}")
    best = results[-1][0]
    for k in range(len(results) + 1, max_steps + 1):
        free = [i for i in range(1, n - 1) if i not in best.ts]
        tried: dict[int, float] = {}

        def attempt(i: int) -> None:
            if i in free and i not in tried:
                tried[i] = score(Schedule(tuple(sorted(best.ts + (i,))), n))

        for i in free[::stride]:
            attempt(i)
        centre = min(tried, key=tried.__getitem__)
        attempt(centre - 1)
        attempt(centre + 1)
        pick = min(tried, key=tried.__getitem__)
        best = Schedule(tuple(sorted(best.ts + (pick,))), n)
        results.append((best, tried[pick]))
        log(f"{k} steps {list(best.ts)}  {tried[pick]:.5f}  ({len(tried)} tried)")
    return results


def swd_score(model: Denoiser, data: Path, samples_per_style: int, batch: int = 64) -> Callable[[Schedule], float]:
    """Mean over styles (those the model knows) of the SWD mean over pyramid levels."""
    images, labels = load_dataset(data, "train")
    names = model.param.class_names or STYLES
    real = {}
    for s, name in enumerate(names):
        pool = images[labels == STYLES.index(name)]
        pick = torch.randperm(len(pool), generator=torch.Generator().manual_seed(100 + s))[:samples_per_style]
        real[s] = pool[pick].float() / 127.5 - 1

    def score(schedule: Schedule) -> float:
        total = 0.0
        for s in real:
            seeds = [SEED_BASE + s * 100_000 + i for i in range(samples_per_style)]
            label = s if model.param.class_names else None
            fake = torch.cat([tasks.generate(model, seeds[j:j + batch], schedule=schedule, label=label).float()
                              for j in range(0, len(seeds), batch)])
            total += swd(fake.cpu(), real[s], torch.Generator().manual_seed(1234))["mean"]
        return total / len(real)

    return score


def write_schedules(folder: Path, results: list[tuple[Schedule, float]], note: str) -> Path:
    """schedules.json: {"n": grid, "ts": {"k": [...]}, "score": {"k": ...}, "note": how they were tuned}."""
    ts = ",\n".join(f'    "{s.evaluations}": {json.dumps(list(s.ts))}' for s, _ in results)
    score = ",\n".join(f'    "{s.evaluations}": {round(v, 6)}' for s, v in results)
    text = (f'{{\n  "n": {results[0][0].n},\n  "ts": {{\n{ts}\n  }},\n  "score": {{\n{score}\n  }},\n'
            f'  "note": {json.dumps(note)}\n}}\n')  # one line per schedule, for people reading it
    path = folder / SCHEDULES_NAME
    path.write_text(text)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.tune_ts", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", type=Path, required=True, help="consistency model folder (schedules.json goes here)")
    parser.add_argument("--data", type=Path, default=Path("data/emoji32"), help="built by python -m training.data")
    parser.add_argument("--max-steps", type=int, default=8)
    parser.add_argument("--grid", type=int, default=40, help="points of the Karras grid ts index into")
    parser.add_argument("--samples-per-style", type=int, default=128)
    parser.add_argument("--stride", type=int, default=3, help="try every stride-th index, then refine")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--extend", action="store_true",
                        help="continue the search from the folder's schedules.json (same settings) up to --max-steps")
    args = parser.parse_args(argv)
    model = load_model(args.model, resolve_runtime(args.device))
    if model.param.boundary != "cm":
        parser.error(f"{args.model} is not a consistency model (boundary {model.param.boundary!r})")
    done = None
    if args.extend:
        tuned = read_schedules(args.model)
        scores = json.loads((args.model / SCHEDULES_NAME).read_text()).get("score", {}) if tuned else {}
        if not tuned or set(scores) != {str(k) for k in tuned}:
            parser.error(f"--extend needs {args.model / SCHEDULES_NAME} with ts and scores (written by this tool)")
        done = [(tuned[k], float(scores[str(k)])) for k in sorted(tuned)]
        if done[0][0].n != args.grid:
            parser.error(f"{args.model / SCHEDULES_NAME} indexes a {done[0][0].n}-point grid, not --grid {args.grid}")
    start = time.time()
    results = greedy_ts(swd_score(model, args.data, args.samples_per_style), args.grid, args.max_steps, args.stride,
                        done=done)
    note = (f"python -m training.tune_ts --max-steps {args.max_steps} --samples-per-style {args.samples_per_style} "
            f"--stride {args.stride}: greedy, SWD mean to training images (lower is better), "
            f"{(time.time() - start) / 60:.0f} min"
            + (f" for steps {len(done) + 1}-{args.max_steps}, added by --extend" if done else ""))
    print(f"wrote {write_schedules(args.model, results, note)}")


if __name__ == "__main__":
    main()
