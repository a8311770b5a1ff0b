"""Teacher trajectories for knowledge distillation: the EDM teacher's deterministic Heun paths from noise.

    python -m training.trajectories --teacher weights/emoji32-edm --out runs/traj --chunks 40

Every state of a probability-flow ODE path belongs to the same origin, so a path of the teacher's N-level
Heun sampler gives N (state, sigma) -> end pairs: regression targets for the consistency function, exact up
to the teacher and its discretization. They are the fixed point that consistency distillation approaches by
bootstrapping (CM paper Sec. 3); regressing onto them is knowledge distillation in the sense of Luhman &
Luhman 2021, at every level instead of the start only. A path costs 2N - 1 teacher evaluations for N pairs,
fewer per pair than a CD step's two teacher and one target evaluations, and its targets carry no bootstrap
error.

Each chunk is one safetensors file, `chunk00012.safetensors`: `xs` (B, N, C, H, W) fp16, the states at
`sigmas` (N, descending); `x0` (B, C, H, W) fp16, the ends clipped to [-1, 1]; `labels` (B,) int64 (all -1
for an unconditional teacher). Chunk c holds seeds SEED_BASE + c * B + i and, for a conditional teacher,
style c mod classes, so an interrupted run resumes by skipping the chunks already written, and the same
command writes the same files.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from editing import tasks
from editing.models import load_model, resolve_runtime
from editing.precond import Denoiser
from editing.samplers import Step

SEED_BASE = 20_000_000  # apart from the benchmark's (style * 10^6 + i) and tune_ts's (7 * 10^6 + ...) seeds


@dataclass(frozen=True)
class Trajectories:
    xs: torch.Tensor  # (P, N, C, H, W) states, float32
    x0: torch.Tensor  # (P, C, H, W) ends in [-1, 1]
    labels: torch.Tensor | None  # (P,) or None for an unconditional teacher
    sigmas: torch.Tensor  # (N,) descending, the level of each state


def chunk_path(out: Path, index: int) -> Path:
    return out / f"chunk{index:05d}.safetensors"


def write_chunk(teacher: Denoiser, out: Path, index: int, size: int, steps: int) -> Path:
    """One chunk of `size` Heun paths on a `steps`-level grid (2 * steps - 1 teacher evaluations each)."""
    classes = len(teacher.param.class_names)
    label = index % classes if classes else None
    seeds = [SEED_BASE + index * size + i for i in range(size)]
    states: list[torch.Tensor] = []
    sigmas: list[float] = []

    def record(step: Step) -> None:
        states.append(step.x.to(torch.float16).cpu())
        sigmas.append(step.sigma)

    x0 = tasks.heun_baseline(teacher, seeds, steps=steps, label=label, callback=record)
    path = chunk_path(out, index)
    tmp = path.with_suffix(".tmp")
    save_file({"xs": torch.stack(states, 1).contiguous(), "x0": x0.to(torch.float16).cpu().contiguous(),
               "labels": torch.full((size,), -1 if label is None else label, dtype=torch.int64),
               "sigmas": torch.tensor(sigmas, dtype=torch.float32)}, tmp)
    tmp.replace(path)  # a killed run never leaves half a chunk under the final name
    return path


def load_trajectories(folder: Path, device: torch.device | str = "cpu") -> Trajectories:
    """Every chunk in `folder`, concatenated (states and ends as float32 on `device`)."""
    files = sorted(folder.glob("chunk*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{folder}: no chunk*.safetensors (write them with python -m training.trajectories)")
    chunks = [load_file(f) for f in files]
    sigmas = chunks[0]["sigmas"]
    for f, c in zip(files, chunks):
        if not torch.equal(c["sigmas"], sigmas):
            raise ValueError(f"{f}: its sigma grid differs from {files[0]}'s; keep one grid per folder")
    labels = torch.cat([c["labels"] for c in chunks])
    return Trajectories(
        xs=torch.cat([c["xs"] for c in chunks]).to(device, torch.float32),
        x0=torch.cat([c["x0"] for c in chunks]).to(device, torch.float32),
        labels=None if bool((labels < 0).all()) else labels.to(device),
        sigmas=sigmas.to(device),
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.trajectories", description=__doc__.split("\n\n")[0])
    parser.add_argument("--teacher", type=Path, required=True, help="EDM diffusion model folder")
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--chunks", type=int, required=True, help="write chunks 0..chunks-1 (existing ones are kept)")
    parser.add_argument("--chunk-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=18, help="Heun levels: 2 * steps - 1 evaluations per path")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    if args.chunks < 1 or args.chunk_size < 1 or args.steps < 2:
        parser.error("--chunks and --chunk-size must be at least 1, --steps at least 2")
    teacher = load_model(args.teacher, resolve_runtime(args.device))
    if teacher.param.boundary != "edm":
        parser.error(f"{args.teacher} is not a diffusion model (boundary {teacher.param.boundary!r})")
    args.out.mkdir(parents=True, exist_ok=True)
    for index in range(args.chunks):
        if chunk_path(args.out, index).exists():
            continue
        start = time.time()
        path = write_chunk(teacher, args.out, index, args.chunk_size, args.steps)
        print(f"{path}: {args.chunk_size} paths in {time.time() - start:.0f} s", flush=True)


if __name__ == "__main__":
    main()
