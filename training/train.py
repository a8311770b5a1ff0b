"""Train an EDM teacher, or a consistency model by CT or CD, with resumable checkpoints.

    python -m training.train --mode edm --data data/emoji32 --run-dir runs/edm32 --hours 2
    python -m training.train --run-dir runs/edm32 --resume            # continue where it stopped
    python -m training.train --mode ct --init weights/emoji32-edm --data data/emoji32 --run-dir runs/ct32
    python -m training.train --mode ect --init weights/emoji32-edm --data data/emoji32 --run-dir runs/ect32
    python -m training.train --mode cd --teacher weights/emoji32-edm --init weights/emoji32-edm ...
    python -m training.train --mode cd ... --adv-weight 2           # plus a GAN term (training.adversarial)
    torchrun --nproc_per_node=2 -m training.train ...             # data parallel (gloo on CPU)
    python -m training.train --warm-start training/snapshots/edm32 --export weights/x   # a snapshot as a model folder

The objectives are in training.objectives, the run's files in training.checkpoints: a checkpoint holds
the model, its EMA, the optimizer moments, the discriminator heads (if any) and the generator state, so
`--resume` continues bit-identically.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from tqdm import tqdm

from editing.models import Runtime, cpu_has_amx, cpu_has_native_bf16, load_model
from editing.precond import Denoiser, Parameterization
from training.adversarial import Discriminator
from training.checkpoints import (Progress, RunState, export, export_compact, load_checkpoint, load_compact,
                                  save_checkpoint, save_compact)
from training.data import STYLES, read_folder
from training.nets import build_unet
from training.objectives import (CDObjective, CTObjective, ECTObjective, EDMObjective, GANTerm, Objective,
                                 backward_accumulated, backward_steps)

__all__ = ["TrainConfig", "backward_accumulated", "build_models", "config_from_dict", "export", "export_compact",
           "load_dataset", "save_compact", "train"]

MODES = ("edm", "ct", "ect", "cd")


def _arg(default: Any, help: str) -> Any:
    """A config field with its CLI help text."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class TrainConfig:
    """A run's recipe, saved as the run folder's config.json; every field is a CLI flag (--run-dir for run_dir)."""

    mode: str = _arg("edm", "objective: edm (the diffusion teacher), ct (consistency training), ect (easy "
                            "consistency tuning: ct from --init's teacher weights, Geng et al. 2024) or cd (distillation)")
    data: str = _arg("data/emoji32", "data folder (images.npy + index.jsonl, from training.data or training.photos)")
    run_dir: str = _arg("runs/edm32", "run folder: checkpoint, config.json, log.jsonl")
    unet: str = _arg("emoji-s5", "UNet preset of training.nets for a fresh model (ignored with --init)")
    conditional: bool = _arg(True, "class-conditional on style (--no-conditional for unlabelled data)")
    init: str = _arg("", "model folder to start from (ct/cd: the EDM teacher's weights)")
    teacher: str = _arg("", "cd: the EDM teacher's model folder")
    batch: int = _arg(64, "images per process and micro-batch")
    accumulate: int = _arg(1, "micro-batches per optimizer step: a larger effective batch at the same memory")
    lr: float = _arg(6e-4, "Adam learning rate after warm-up")
    warmup_images: int = _arg(20_000, "linear learning-rate warm-up, in images (from the start or a warm start)")
    lr_decay_images: int = _arg(0, "0: constant lr after warm-up; else lr / sqrt(max(images / this, 1)) (EDM2)")
    lr_cooldown_images: int = _arg(0, "0: none; else the lr falls linearly to 0 over the last this many images "
                                      "before --total-images (a warm-up-stable-decay cooldown)")
    grad_clip: float = _arg(1.0, "gradient norm clip (0: none)")
    dropout: float = _arg(0.0, "UNet dropout (replaces an --init folder's)")
    ema_halflife_images: int = _arg(100_000, "half-life of the exported EMA of the weights, in images")
    ema_rampup: float = _arg(0.1, "the EMA half-life is at most this fraction of the images seen (EDM)")
    cd_target_ema: float = _arg(0.95, "cd: EMA rate of the target network per step (CM paper, Table 3)")
    ct_total_images: int = _arg(2_000_000, "ct, ect: length of the curriculum (iCT's N doubling; ECT's dt halving)")
    adv_weight: float = _arg(0.0, "cd: weight of the GAN term on 1-step samples (training.adversarial); 0: plain CD")
    adv_lr: float = _arg(1e-4, "cd: the discriminator heads' learning rate (Adam, betas (0, 0.99), constant)")
    total_images: int = _arg(10_000_000, "stop after this many images")
    hours: float = _arg(0.0, "stop after this much wall time, the checkpoint written first (0: no limit)")
    checkpoint_minutes: float = _arg(5.0, "wall minutes between checkpoints")
    seed: int = _arg(0, "seed of the initial weights and of the run's generator")
    hflip: bool = _arg(False, "mirror half the images of each batch left-right (photos; emoji carry text and arrows)")
    bf16: bool = _arg(True, "bf16 autocast on CUDA and on AMX CPUs; with AVX512-BF16 alone where a timed step of the "
                            "net is faster so; never where bf16 is emulated (slower than fp32)")

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValueError(f"mode must be one of {', '.join(MODES)}, got {self.mode!r}")
        if self.adv_weight < 0 or (self.adv_weight > 0 and self.mode != "cd"):
            raise ValueError(f"adv_weight must be 0, or positive with mode cd; got {self.adv_weight} with {self.mode}")


# Fields of configs saved before the tried-and-not-shipped terms were removed (commit 8a0e8ee has them), with
# the value that means "off": a saved config with that value loads, any other is refused.
RETIRED = {"adv_sigmas": "", "adv_renoise": "real", "dmd_weight": 0.0, "dmd_lr": None}


def config_from_dict(saved: dict) -> TrainConfig:
    """A TrainConfig from a run's or snapshot's saved JSON, dropping retired fields that were off."""
    kept = dict(saved)
    for name, off in RETIRED.items():
        value = kept.pop(name, off)
        if off is not None and value != off:
            raise ValueError(f"this run used {name}={value!r}, removed after commit 8a0e8ee: continue it from there")
    return TrainConfig(**kept)


def load_dataset(folder: Path, split: str = "train") -> tuple[torch.Tensor, torch.Tensor | None]:
    """uint8 images (N, 3, H, W) of one split and their style labels (None for unlabelled sets such as the
    photo tiles of training.photos), from training.data's or training.photos' output."""
    images, records = read_folder(folder)
    keep = [i for i, r in enumerate(records) if r["split"] == split]
    labels = torch.tensor([STYLES.index(records[i]["style"]) for i in keep]) if "style" in records[0] else None
    chosen = images if len(keep) == len(records) else images[keep]
    # Channels first in numpy: the copy it makes is writable, where the read-only memory map itself is not.
    return torch.from_numpy(np.ascontiguousarray(chosen.transpose(0, 3, 1, 2))), labels


def lr_at(cfg: TrainConfig, images: int, warm_from: int = 0) -> float:
    """Linear warm-up (from the start, or from a warm start), then optional 1/sqrt decay (EDM2), then an optional
    linear cooldown to zero at the end of the run (Hagele et al. 2024, warm-up-stable-decay)."""
    lr = cfg.lr * min(1.0, (images - warm_from + 1) / max(cfg.warmup_images, 1))
    if cfg.lr_decay_images:
        lr /= math.sqrt(max(images / cfg.lr_decay_images, 1.0))
    if cfg.lr_cooldown_images:
        lr *= min(1.0, max(cfg.total_images - images, 0) / cfg.lr_cooldown_images)
    return lr


def ema_beta(cfg: TrainConfig, images: int, batch: int) -> float:
    """Per-step EMA rate from a half-life in images, ramped up early in training (EDM's training_loop)."""
    halflife = min(cfg.ema_halflife_images, images * cfg.ema_rampup)
    return 0.5 ** (batch / max(halflife, 1e-8))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    # One fused kernel per dtype/device group, not one per tensor (launch-bound on a GPU).
    torch._foreach_lerp_(list(ema.parameters()), [p.detach() for p in model.parameters()], 1.0 - beta)


def build_models(cfg: TrainConfig, resolution: int, device: torch.device) -> tuple[Denoiser, Denoiser | None]:
    """The student (fresh, or from cfg.init) and, for cd, the frozen EDM teacher."""
    # bf16 on CUDA and on AMX CPUs. Where bf16 is emulated it was measured slower than fp32; with AVX512-BF16
    # alone the sign depended on the CPU and the net (model cards), so there it is timed on this net and batch.
    fast_bf16 = device.type == "cuda" or (device.type == "cpu" and (cpu_has_amx() or cpu_has_native_bf16()))
    autocast = torch.bfloat16 if (cfg.bf16 and fast_bf16) else None
    runtime = Runtime(device, torch.float32, autocast)
    boundary = "edm" if cfg.mode == "edm" else "cm"
    if cfg.init:
        loaded = load_model(cfg.init, runtime)
        param = replace(loaded.param, boundary=boundary)
        unet = loaded.unet.requires_grad_(True).train()
        # The run's dropout replaces the one the loaded folder was trained with (0 included: CD/CT from a
        # teacher trained with dropout 0.1 would otherwise keep it, in the student and in the CD target).
        for m in unet.modules():
            if isinstance(m, torch.nn.Dropout):
                m.p = cfg.dropout
        unet.register_to_config(dropout=cfg.dropout)
    else:
        classes = STYLES if cfg.conditional else ()
        with torch.random.fork_rng():  # the initial weights depend on cfg.seed only
            torch.manual_seed(cfg.seed)
            unet, unshuffle = build_unet(cfg.unet, resolution, len(classes), cfg.dropout)
        # Photo tiles (training.photos, which writes a manifest of whole photos) are crops of larger images.
        param = Parameterization(boundary=boundary, resolution=resolution, pixel_unshuffle=unshuffle,
                                 class_names=tuple(classes), tiled=(Path(cfg.data) / "manifest.jsonl").is_file())
        unet = unet.to(device)
    model = Denoiser(unet, param, autocast)
    if autocast is not None and device.type == "cpu" and not cpu_has_amx() and not bf16_step_is_faster(model, cfg.batch):
        model.autocast_dtype, runtime = None, replace(runtime, autocast_dtype=None)
    teacher = load_model(cfg.teacher, runtime) if cfg.mode == "cd" else None
    return model, teacher


def bf16_step_is_faster(model: Denoiser, batch: int, repeats: int = 2) -> bool:
    """Whether a forward and backward pass of `model` at `batch` runs faster under bf16 autocast than in fp32 on
    this CPU (best of `repeats` each, after a warm-up). The weights, their gradients and every RNG are left as
    they were."""
    side, channels = model.param.resolution, model.unet.config.in_channels // model.param.pixel_unshuffle ** 2
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(batch, channels, side, side, generator=generator)
    sigma = torch.full((batch,), 0.5)
    labels = torch.zeros(batch, dtype=torch.long) if model.param.class_names else None
    kept, seconds = model.autocast_dtype, {}
    try:
        for dtype in (torch.bfloat16, None):
            model.autocast_dtype = dtype
            times = []
            for _ in range(repeats + 1):
                start = time.perf_counter()
                model(x, sigma, labels).square().mean().backward()
                times.append(time.perf_counter() - start)
            seconds[dtype] = min(times[1:])
    finally:
        model.autocast_dtype = kept
        for p in model.unet.parameters():
            p.grad = None
    return seconds[torch.bfloat16] < seconds[None]


def _parallel(net: torch.nn.Module, world: int) -> torch.nn.Module:
    """DDP around `net` when there are several processes (gradients averaged across them), else `net`."""
    return torch.nn.parallel.DistributedDataParallel(net) if world > 1 else net


def new_heads(cfg: TrainConfig, teacher: Denoiser, device: torch.device) -> tuple[Discriminator, torch.optim.Optimizer]:
    """The GAN term's discriminator heads (initial weights from cfg.seed alone) and their Adam (beta1 = 0, as
    GAN discriminators are usually trained: StyleGAN2, ADD)."""
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(cfg.seed)
        disc = Discriminator.for_teacher(teacher)
    return disc, torch.optim.Adam(disc.parameters(), lr=cfg.adv_lr, betas=(0.0, 0.99), eps=1e-8)


def make_objective(cfg: TrainConfig, state: RunState, teacher: Denoiser | None, world: int) -> Objective:
    """The objective cfg.mode names, over the run's networks (the heads DDP-wrapped when distributed)."""
    if cfg.mode == "edm":
        return EDMObjective()
    if cfg.mode == "ct":
        return CTObjective(cfg.ct_total_images)
    if cfg.mode == "ect":
        return ECTObjective(cfg.ct_total_images)
    gan = None
    if state.disc is not None:
        gan = GANTerm(state.disc, _parallel(state.disc, world), state.disc_opt, teacher, cfg.adv_weight)
    return CDObjective(state.target, teacher, gan)


def train(cfg: TrainConfig, device: torch.device, resume: bool = False, warm_start: Path | None = None,
          rank: int = 0, world: int = 1) -> Path:
    """Run cfg on `device` until cfg.total_images or cfg.hours; `rank` of `world` processes (torchrun)."""
    run = Path(cfg.run_dir)
    run.mkdir(parents=True, exist_ok=True)

    # 1. Data (the whole set lives on the training device, a few MB at 32 px) and networks.
    images_u8, labels = load_dataset(Path(cfg.data))
    images_u8 = images_u8.to(device)
    labels = labels.to(device) if labels is not None else None
    if cfg.conditional and labels is None:
        raise ValueError(f"{cfg.data} has no style labels: train it with --no-conditional")
    model, teacher = build_models(cfg, images_u8.shape[-1], device)
    ema = copy.deepcopy(model).requires_grad_(False)
    target = copy.deepcopy(model).requires_grad_(False) if cfg.mode == "cd" else None
    opt = torch.optim.Adam(model.unet.parameters(), lr=cfg.lr, betas=(0.9, 0.99), eps=1e-8)
    disc, disc_opt = new_heads(cfg, teacher, device) if cfg.adv_weight > 0 else (None, None)
    generator = torch.Generator(device).manual_seed(cfg.seed * 1000 + rank)  # every draw on the device
    state = RunState(model, ema, target, opt, generator, disc, disc_opt)

    # 2. Where to start: a checkpoint, a compact snapshot, or the beginning.
    progress = Progress()
    if resume and (run / "checkpoint.safetensors").exists():
        progress = load_checkpoint(run, state)
        if rank == 0:
            print(f"resumed {run} at step {progress.step}, {progress.images} images, "
                  f"{progress.seconds / 3600:.2f} h", flush=True)
    elif warm_start is not None:
        snapshot = load_compact(warm_start, model, ema, disc)
        progress = replace(snapshot, warm_from=snapshot.images)  # re-warm the lr while Adam's moments rebuild
        generator.manual_seed(cfg.seed * 1000 + rank + progress.images)
        if target is not None:  # cd: the target network restarts from the student, not from the init
            target.unet.load_state_dict(model.unet.state_dict())
        if rank == 0:
            print(f"warm start from {warm_start} at {progress.images} images", flush=True)
    if rank == 0:
        (run / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    # The student's UNet under DDP (each process draws its own batches); the Denoiser around it keeps the scalings.
    unet_net = _parallel(model.unet, world)
    student = Denoiser(unet_net, model.param, model.autocast_dtype) if world > 1 else model
    objective = make_objective(cfg, state, teacher, world)
    gan = objective.gan if isinstance(objective, CDObjective) else None

    images_seen, step, warm_from = progress.images, progress.step, progress.warm_from
    global_batch = cfg.batch * cfg.accumulate * world
    start, last_ckpt = time.time(), time.time()
    bar = tqdm(total=cfg.total_images, initial=images_seen, unit="img", disable=rank != 0, dynamic_ncols=True,
               mininterval=5.0, file=sys.stdout)

    def micro_step():
        # A batch, drawn with the run's generator so resumption replays the same sequence.
        idx = torch.randint(0, len(images_u8), (cfg.batch,), generator=generator, device=device)
        x = images_u8[idx].to(torch.float32) / 127.5 - 1.0
        if cfg.hflip:
            mirror = torch.rand(cfg.batch, generator=generator, device=device) < 0.5
            x = torch.where(mirror.view(-1, 1, 1, 1), x.flip(-1), x)
        y = labels[idx] if model.param.class_names else None
        return objective.student_step(student, x, y, generator, images_seen)

    loss_avg, d_loss_avg = None, None
    while images_seen < cfg.total_images:
        # 3. The mean over `accumulate` micro-batches, a step with warm-up and clipping, the heads' step, the EMAs.
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, images_seen, warm_from)
        opt.zero_grad(set_to_none=True)
        loss, steps = backward_steps(unet_net, micro_step, cfg.accumulate)
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.unet.parameters(), cfg.grad_clip)
        opt.step()
        if gan is not None:  # on this step's real images and detached 1-step samples
            d_loss = gan.discriminator_step(steps, generator)
            d_loss_avg = d_loss if d_loss_avg is None else 0.98 * d_loss_avg + 0.02 * d_loss
        images_seen += global_batch
        step += 1
        ema_update(ema.unet, model.unet, ema_beta(cfg, images_seen, global_batch))
        if target is not None:
            ema_update(target.unet, model.unet, cfg.cd_target_ema)
        loss_avg = loss if loss_avg is None else 0.98 * loss_avg + 0.02 * loss
        bar.update(global_batch)
        elapsed = progress.seconds + time.time() - start
        extra = {"d_loss": f"{d_loss_avg:.3f}"} if d_loss_avg is not None else {}
        bar.set_postfix(loss=f"{loss_avg:.4f}", **extra, lr=f"{lr_at(cfg, images_seen, warm_from):.1e}",
                        h=f"{elapsed / 3600:.2f}", refresh=False)
        # 4. Checkpoints on a wall-clock cadence and at the end.
        out_of_time = cfg.hours > 0 and time.time() - start >= cfg.hours * 3600
        done = images_seen >= cfg.total_images or out_of_time
        if rank == 0 and (done or time.time() - last_ckpt >= cfg.checkpoint_minutes * 60):
            save_checkpoint(run, asdict(cfg), state, Progress(images_seen, step, elapsed, warm_from))
            # The rate of this process (not images / hours since the run began, which mixes machines and
            # sessions: a run started on a GPU and resumed on a CPU would report the GPU's rate for hours).
            record = {"step": step, "images": images_seen, "loss": loss_avg, "hours": elapsed / 3600,
                      "img_per_s": (images_seen - progress.images) / max(elapsed - progress.seconds, 1e-9)}
            if d_loss_avg is not None:
                record["d_loss"] = d_loss_avg
            with open(run / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            last_ckpt = time.time()
        if done:
            break
    bar.close()
    return run


def resolve_device(name: str) -> torch.device:
    """auto: CUDA when present, else the CPU."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA device here")
    return torch.device(name)


def config_parser() -> argparse.ArgumentParser:
    """The CLI: one flag per TrainConfig field (its help from the field's metadata) plus the run actions."""
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(TrainConfig):
        flag, text = f"--{f.name.replace('_', '-')}", f"{f.metadata['help']} (default {f.default})"
        if f.type in ("bool", bool):
            parser.add_argument(flag, action=argparse.BooleanOptionalAction, default=None, help=text)
        else:
            kind = {"int": int, "float": float, "str": str}[str(f.type)]
            parser.add_argument(flag, type=kind, default=None, help=text)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="where to train (auto: CUDA when present); under torchrun each process takes its LOCAL_RANK GPU")
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    parser.add_argument("--export", type=Path, default=None,
                        help="write the run's (or, with --warm-start, the snapshot's) EMA weights to this folder and exit")
    parser.add_argument("--save-compact", type=Path, default=None,
                        help="write a git-sized snapshot (fp16 weights + progress) of the run to this folder and exit")
    parser.add_argument("--warm-start", type=Path, default=None,
                        help="start from a compact snapshot (fresh optimizer, re-warmed learning rate)")
    return parser


def main(argv: list[str] | None = None) -> None:
    parser = config_parser()
    args = vars(parser.parse_args(argv))
    resume, export_to, device_name = args.pop("resume"), args.pop("export"), args.pop("device")
    compact_to, warm_start = args.pop("save_compact"), args.pop("warm_start")
    given = {k: v for k, v in args.items() if v is not None}
    run = Path(given.get("run_dir", TrainConfig.run_dir))
    saved = run / "config.json"
    try:
        if warm_start is not None:
            base = config_from_dict(json.loads((warm_start / "state.json").read_text())["config"])
        elif (resume or export_to or compact_to) and saved.exists():
            base = config_from_dict(json.loads(saved.read_text()))
        else:
            base = TrainConfig()
        cfg = replace(base, **given)
        device = resolve_device(device_name)
    except ValueError as error:
        parser.error(str(error))
    for name in ("batch", "accumulate"):
        if getattr(cfg, name) < 1:
            parser.error(f"--{name} must be at least 1, got {getattr(cfg, name)}")
    if compact_to:
        save_compact(run, compact_to)
        print(f"saved a compact snapshot of {run} -> {compact_to}")
        return
    if export_to and warm_start is not None:
        export_compact(warm_start, export_to)
        print(f"exported {warm_start} -> {export_to}")
        return
    if export_to:
        export(run, export_to)
        print(f"exported {run} -> {export_to}")
        return
    rank, world = 0, 1
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:  # torchrun
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    train(cfg, device, resume=resume, warm_start=warm_start, rank=rank, world=world)
    if world > 1:
        dist.barrier()
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
