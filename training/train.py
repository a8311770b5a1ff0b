"""Train an EDM teacher, or a consistency model by CT or CD, with resumable checkpoints.

    python -m training.train --mode edm --data data/emoji32 --run-dir runs/edm32 --hours 2
    python -m training.train --run-dir runs/edm32 --resume            # continue where it stopped
    python -m training.train --mode ct --init weights/emoji32-edm --data data/emoji32 --run-dir runs/ct32
    python -m training.train --mode cd --teacher weights/emoji32-edm --init weights/emoji32-edm ...
    python -m training.train --mode cd ... --adv-weight 2           # plus a GAN term (training.adversarial)
    torchrun --nproc_per_node=2 -m training.train ...             # data parallel (gloo on CPU)
    python -m training.train --warm-start training/snapshots/edm32 --export weights/x   # a snapshot as a model folder

A checkpoint (`checkpoint.safetensors` + `checkpoint.json` in the run folder) holds the model, its EMA,
the optimizer moments, the discriminator heads (if any), and the generator state, so
`--resume` continues bit-identically. Nothing in it is pickled.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import math
import os
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from safetensors.torch import load_file, save_file
from tqdm import tqdm

from editing.models import SCHEDULES_NAME, Runtime, cpu_has_amx, load_model, save_model
from editing.precond import Denoiser, Parameterization
from training.adversarial import AdversarialLoss, Discriminator
from training.data import STYLES
from training.losses import CDLoss, CTLoss, EDMLoss, ct_discretization, pseudo_huber
from training.nets import build_unet


MODES = ("edm", "ct", "cd")


@dataclass(frozen=True)
class TrainConfig:
    mode: str = "edm"  # edm | ct | cd
    data: str = "data/emoji32"
    run_dir: str = "runs/edm32"
    unet: str = "emoji-s5"
    conditional: bool = True  # class-conditional on style
    init: str = ""  # model folder to start from (ct/cd: the EDM teacher's weights)
    teacher: str = ""  # cd: the EDM teacher
    batch: int = 64  # per process and micro-batch
    accumulate: int = 1  # micro-batches per optimizer step: a larger effective batch at the same memory
    lr: float = 6e-4
    warmup_images: int = 20_000
    lr_decay_images: int = 0  # 0: constant after warm-up; else lr / sqrt(max(images / this, 1)) (EDM2)
    grad_clip: float = 1.0
    dropout: float = 0.0
    ema_halflife_images: int = 100_000
    ema_rampup: float = 0.1  # EMA half-life is at most this fraction of the images seen (EDM)
    cd_target_ema: float = 0.95  # cd: EMA rate of the target network (CM paper, Table 3)
    ct_total_images: int = 2_000_000  # ct: length of the discretization curriculum
    adv_weight: float = 0.0  # cd: weight of the GAN term on 1-step samples (training.adversarial); 0: plain CD
    adv_lr: float = 1e-4  # cd: the discriminator heads' learning rate (Adam, betas (0, 0.99), constant)
    total_images: int = 10_000_000
    hours: float = 0.0  # stop after this much wall time (0: no limit); the checkpoint is written first
    checkpoint_minutes: float = 5.0
    seed: int = 0
    hflip: bool = False  # mirror half the images of each batch left-right (photos; emoji carry text and arrows)
    bf16: bool = True  # bf16 autocast on CUDA, and on a CPU with AMX (ignored on other CPUs: slower there)

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
    images = np.load(folder / "images.npy", mmap_mode="r")
    records = [json.loads(line) for line in (folder / "index.jsonl").read_text().splitlines()]
    keep = [i for i, r in enumerate(records) if r["split"] == split]
    labels = torch.tensor([STYLES.index(records[i]["style"]) for i in keep]) if "style" in records[0] else None
    chosen = images if len(keep) == len(records) else images[keep]
    return torch.from_numpy(np.ascontiguousarray(chosen)).permute(0, 3, 1, 2).contiguous(), labels


def lr_at(cfg: TrainConfig, images: int, warm_from: int = 0) -> float:
    """Linear warm-up (from the start, or from a warm start), then optional 1/sqrt decay (EDM2)."""
    lr = cfg.lr * min(1.0, (images - warm_from + 1) / max(cfg.warmup_images, 1))
    if cfg.lr_decay_images:
        lr /= math.sqrt(max(images / cfg.lr_decay_images, 1.0))
    return lr


def ema_beta(cfg: TrainConfig, images: int, batch: int) -> float:
    """Per-step EMA rate from a half-life in images, ramped up early in training (EDM's training_loop)."""
    halflife = min(cfg.ema_halflife_images, images * cfg.ema_rampup)
    return 0.5 ** (batch / max(halflife, 1e-8))


@torch.no_grad()
def ema_update(ema: torch.nn.Module, model: torch.nn.Module, beta: float) -> None:
    # One fused kernel per dtype/device group, not one per tensor (launch-bound on a GPU).
    torch._foreach_lerp_(list(ema.parameters()), [p.detach() for p in model.parameters()], 1.0 - beta)


# -- checkpoints: safetensors for tensors, JSON for the rest ---------------------------------------


@dataclass
class Adversary:
    """cd with a GAN term: the discriminator heads and their optimizer (the teacher is their backbone)."""

    disc: Discriminator
    opt: torch.optim.Optimizer


def _section(tensors: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
    """The tensors saved under `name.` (model, ema, target, disc), with that prefix removed."""
    prefix = f"{name}."
    return {k[len(prefix):]: v for k, v in tensors.items() if k.startswith(prefix)}


def _optimizer_tensors(opt: torch.optim.Optimizer, prefix: str) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{i}.{name}": torch.as_tensor(value)
            for i, state in opt.state_dict()["state"].items() for name, value in state.items()}


def _load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], prefix: str) -> None:
    state = opt.state_dict()
    for key, value in tensors.items():
        if key.startswith(prefix + "."):
            _, i, name = key.split(".", 2)
            state["state"].setdefault(int(i), {})[name] = value
    opt.load_state_dict(state)


def save_checkpoint(
    run: Path, cfg: TrainConfig, model: Denoiser, ema: Denoiser, target: Denoiser | None,
    opt: torch.optim.Optimizer, generator: torch.Generator, images: int, step: int, seconds: float,
    warm_from: int = 0, adversary: Adversary | None = None,
) -> None:
    tensors = {f"model.{k}": v for k, v in model.unet.state_dict().items()}
    tensors |= {f"ema.{k}": v for k, v in ema.unet.state_dict().items()}
    if target is not None:
        tensors |= {f"target.{k}": v for k, v in target.unet.state_dict().items()}
    tensors |= _optimizer_tensors(opt, "opt")
    if adversary is not None:
        tensors |= {f"disc.{k}": v for k, v in adversary.disc.state_dict().items()}
        tensors |= _optimizer_tensors(adversary.opt, "disc_opt")
    tensors["generator"] = generator.get_state()
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    tmp = run / "checkpoint.tmp.safetensors"
    save_file(tensors, tmp)
    meta = {"config": asdict(cfg), "param": model.param.to_dict(), "unet_config": dict(model.unet.config),
            "images": images, "step": step, "seconds": seconds, "warm_from": warm_from}
    (run / "checkpoint.tmp.json").write_text(json.dumps(meta, indent=2, default=list))
    os.replace(tmp, run / "checkpoint.safetensors")  # atomic: a crash never leaves half a checkpoint
    os.replace(run / "checkpoint.tmp.json", run / "checkpoint.json")


def load_checkpoint(
    run: Path, model: Denoiser, ema: Denoiser, target: Denoiser | None,
    opt: torch.optim.Optimizer, generator: torch.Generator, adversary: Adversary | None = None,
) -> dict:
    tensors = load_file(run / "checkpoint.safetensors")
    meta = json.loads((run / "checkpoint.json").read_text())
    for name, net in (("model", model), ("ema", ema), ("target", target)):
        if net is not None:
            net.unet.load_state_dict(_section(tensors, name))
    _load_optimizer(opt, tensors, "opt")
    if adversary is not None:
        disc_state = _section(tensors, "disc")
        if disc_state:  # absent when the run so far was plain CD: the heads start fresh
            adversary.disc.load_state_dict(disc_state)
            _load_optimizer(adversary.opt, tensors, "disc_opt")
    generator.set_state(tensors["generator"])
    return meta


def save_compact(run: Path, out: Path) -> None:
    """A git-sized snapshot of a run: fp16 online and EMA weights plus progress, no optimizer moments.

    A later session on a fresh machine continues from it with `--warm-start`: Adam's moments are
    rebuilt during a short re-warm-up, which costs far less than carrying 4x the weights in git. A run
    with a GAN term also keeps its discriminator heads (2 MB), so the next session's heads start trained.
    """
    tensors = load_file(run / "checkpoint.safetensors")
    meta = json.loads((run / "checkpoint.json").read_text())
    out.mkdir(parents=True, exist_ok=True)
    for which in ("model", "ema", "disc"):
        state = {k: v.to(torch.float16).contiguous() for k, v in _section(tensors, which).items()}
        if state:
            save_file(state, out / f"{which}.safetensors")
    (out / "state.json").write_text(json.dumps(meta, indent=2, default=list) + "\n")


def load_compact(
    folder: Path, model: Denoiser, ema: Denoiser, adversary: Adversary | None = None,
) -> dict:
    meta = json.loads((folder / "state.json").read_text())
    if adversary is not None and (folder / "disc.safetensors").exists():  # else the heads start fresh
        adversary.disc.load_state_dict({k: v.to(torch.float32) for k, v in load_file(folder / "disc.safetensors").items()})
    for which, net in (("model", model), ("ema", ema)):
        # A snapshot may hold the EMA alone (its bytes are the exported model's, so git stores them once):
        # the online weights then restart from the EMA.
        path = folder / f"{which}.safetensors"
        state = load_file(path if path.exists() else folder / "ema.safetensors")
        net.unet.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
    return meta


# -- the loop ---------------------------------------------------------------------------------------


def backward_accumulated(net: torch.nn.Module, micro_losses: Callable[[], torch.Tensor], accumulate: int) -> float:
    """Backpropagate the mean of `accumulate` micro-batch losses, one micro-batch in memory at a time.

    The gradient of a mean is the mean of the gradients, so the step equals one on the concatenated
    batch. Under DDP only the last backward all-reduces (no_sync on the others). Returns the mean loss.
    """
    if accumulate < 1:
        raise ValueError(f"accumulate must be at least 1, got {accumulate}")
    losses = []
    for i in range(accumulate):
        last = i == accumulate - 1
        sync = contextlib.nullcontext() if last or not hasattr(net, "no_sync") else net.no_sync()
        with sync:
            loss = micro_losses()
            (loss / accumulate).backward()
        losses.append(loss.detach())
    return torch.stack(losses).mean().item()  # one host sync per step, not one per micro-batch


def build_models(cfg: TrainConfig, resolution: int, device: torch.device) -> tuple[Denoiser, Denoiser | None]:
    """The student (fresh, or from cfg.init) and, for cd, the frozen EDM teacher."""
    # bf16 on CUDA, and on a CPU only with AMX (see cpu_has_amx): a CD step at batch 64 measured 1.6x
    # slower than fp32 on AVX-512 without AMX (19 vs 30 img/s), 11x slower emulated on AVX2.
    fast_bf16 = device.type == "cuda" or (device.type == "cpu" and cpu_has_amx())
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
        param = Parameterization(boundary=boundary, resolution=resolution, pixel_unshuffle=unshuffle,
                                 class_names=tuple(classes))
        unet = unet.to(device)
    model = Denoiser(unet, param, autocast)
    teacher = load_model(cfg.teacher, runtime) if cfg.mode == "cd" else None
    return model, teacher


def train(cfg: TrainConfig, resume: bool = False, warm_start: Path | None = None) -> Path:
    distributed = "WORLD_SIZE" in os.environ and int(os.environ["WORLD_SIZE"]) > 1
    rank, world = 0, 1
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
        rank, world = dist.get_rank(), dist.get_world_size()
        if device.type == "cuda":
            device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
    run = Path(cfg.run_dir)
    run.mkdir(parents=True, exist_ok=True)

    # The whole set lives on the training device (a few MB at 32 px): batches are gathered there.
    images_u8, labels = load_dataset(Path(cfg.data))
    images_u8 = images_u8.to(device)
    labels = labels.to(device) if labels is not None else None
    if cfg.conditional and labels is None:
        raise ValueError(f"{cfg.data} has no style labels: train it with --no-conditional")
    resolution = images_u8.shape[-1]
    model, teacher = build_models(cfg, resolution, device)
    ema = copy.deepcopy(model).requires_grad_(False)
    target = copy.deepcopy(model).requires_grad_(False) if cfg.mode == "cd" else None
    opt = torch.optim.Adam(model.unet.parameters(), lr=cfg.lr, betas=(0.9, 0.99), eps=1e-8)
    adversary = None
    if cfg.adv_weight > 0:
        with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
            torch.manual_seed(cfg.seed)  # the heads' initial weights depend on cfg.seed only
            disc = Discriminator.for_teacher(teacher)
        # beta1 = 0, as GAN discriminators are usually trained (StyleGAN2, ADD).
        adversary = Adversary(disc, torch.optim.Adam(disc.parameters(), lr=cfg.adv_lr, betas=(0.0, 0.99), eps=1e-8))
    generator = torch.Generator(device).manual_seed(cfg.seed * 1000 + rank)  # every draw on the device
    images_seen, step, seconds = 0, 0, 0.0
    warm_from = 0
    if resume and (run / "checkpoint.safetensors").exists():
        meta = load_checkpoint(run, model, ema, target, opt, generator, adversary)
        images_seen, step, seconds = meta["images"], meta["step"], meta["seconds"]
        warm_from = meta.get("warm_from", 0)
        if rank == 0:
            print(f"resumed {run} at step {step}, {images_seen} images, {seconds / 3600:.2f} h", flush=True)
    elif warm_start is not None:
        meta = load_compact(warm_start, model, ema, adversary)
        images_seen, step, seconds = meta["images"], meta["step"], meta["seconds"]
        generator.manual_seed(cfg.seed * 1000 + rank + images_seen)
        warm_from = images_seen  # re-warm the learning rate while Adam's moments rebuild
        if target is not None:  # cd: the target network restarts from the student, not from the init
            target.unet.load_state_dict(model.unet.state_dict())
        if rank == 0:
            print(f"warm start from {warm_start} at {images_seen} images", flush=True)
    if rank == 0:
        (run / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")
    net = model
    if distributed:
        # DDP averages gradients across processes; each draws its own batches from its own generator.
        net = torch.nn.parallel.DistributedDataParallel(model)
        net.param = model.param  # the losses read the parameterization through the wrapper
    disc_net = adversary.disc if adversary is not None else None
    if distributed and adversary is not None:
        disc_net = torch.nn.parallel.DistributedDataParallel(adversary.disc)

    edm_loss, ct_loss, cd_loss, adv_loss = EDMLoss(), CTLoss(), CDLoss(), AdversarialLoss()
    fakes: list[tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]] = []  # (real, 1-step sample, labels)
    global_batch = cfg.batch * cfg.accumulate * world
    start, last_ckpt, images_at_start = time.time(), time.time(), images_seen
    bar = tqdm(total=cfg.total_images, initial=images_seen, unit="img", disable=rank != 0, dynamic_ncols=True,
               mininterval=5.0, file=sys.stdout)

    def micro_loss() -> torch.Tensor:
        # 1. A batch, drawn with the run's generator so resumption replays the same sequence.
        idx = torch.randint(0, len(images_u8), (cfg.batch,), generator=generator, device=device)
        x = images_u8[idx].to(torch.float32) / 127.5 - 1.0
        if cfg.hflip:
            mirror = torch.rand(cfg.batch, generator=generator, device=device) < 0.5
            x = torch.where(mirror.view(-1, 1, 1, 1), x.flip(-1), x)
        y = labels[idx] if model.param.class_names else None
        # 2. The loss of the chosen objective.
        if cfg.mode == "edm":
            return edm_loss(net, x, y, generator)
        if cfg.mode == "ct":
            return ct_loss(net, x, y, generator, ct_discretization(images_seen, cfg.ct_total_images))
        if adversary is None:
            return cd_loss(net, target, teacher, x, y, generator)
        # CD plus the GAN term on 1-step samples from fresh noise, in one evaluation of the student (DDP reduces
        # its gradient once). The heads are frozen here: this term only moves the student.
        x_hi, sigma_hi, out_lo = cd_loss.targets(target, teacher, x, y, generator)
        z = torch.randn(x.shape, generator=generator, device=device)
        x_gen = model.param.sigma_max * z
        sigma_gen = torch.full((x.shape[0],), model.param.sigma_max, device=device)
        out = net(torch.cat([x_hi, x_gen]), torch.cat([sigma_hi, sigma_gen]), torch.cat([y, y]) if y is not None else None)
        out_hi, fake = out.chunk(2)
        loss = pseudo_huber(out_hi, out_lo).mean()
        fakes.append((x, fake.detach(), y))
        adversary.disc.requires_grad_(False)
        loss = loss + cfg.adv_weight * adv_loss.generator_loss(adversary.disc, teacher, fake, y, generator)
        adversary.disc.requires_grad_(True)
        return loss

    def disc_loss() -> torch.Tensor:
        real, fake, y = fakes.pop(0)
        return adv_loss.discriminator_loss(disc_net, teacher, real, fake, y, generator)

    loss_avg, d_loss_avg = None, None
    while images_seen < cfg.total_images:
        # 3. The mean over `accumulate` micro-batches, a step with warm-up and clipping, then the EMAs.
        for group in opt.param_groups:
            group["lr"] = lr_at(cfg, images_seen, warm_from)
        opt.zero_grad(set_to_none=True)
        loss = backward_accumulated(net, micro_loss, cfg.accumulate)
        if cfg.grad_clip:
            torch.nn.utils.clip_grad_norm_(model.unet.parameters(), cfg.grad_clip)
        opt.step()
        if adversary is not None:
            # The discriminator's step on this step's real images and (detached) 1-step samples.
            adversary.opt.zero_grad(set_to_none=True)
            d_loss = backward_accumulated(disc_net, disc_loss, cfg.accumulate)
            adversary.opt.step()
            d_loss_avg = d_loss if d_loss_avg is None else 0.98 * d_loss_avg + 0.02 * d_loss
        images_seen += global_batch
        step += 1
        ema_update(ema.unet, model.unet, ema_beta(cfg, images_seen, global_batch))
        if target is not None:
            ema_update(target.unet, model.unet, cfg.cd_target_ema)
        loss_avg = loss if loss_avg is None else 0.98 * loss_avg + 0.02 * loss
        bar.update(global_batch)
        elapsed = seconds + time.time() - start
        extra = {"d_loss": f"{d_loss_avg:.3f}"} if d_loss_avg is not None else {}
        bar.set_postfix(loss=f"{loss_avg:.4f}", **extra, lr=f"{lr_at(cfg, images_seen, warm_from):.1e}",
                        h=f"{elapsed / 3600:.2f}", refresh=False)
        # 4. Checkpoints on a wall-clock cadence and at the end.
        out_of_time = cfg.hours > 0 and time.time() - start >= cfg.hours * 3600
        done = images_seen >= cfg.total_images or out_of_time
        if rank == 0 and (done or time.time() - last_ckpt >= cfg.checkpoint_minutes * 60):
            save_checkpoint(run, cfg, model, ema, target, opt, generator, images_seen, step, elapsed, warm_from,
                            adversary)
            # The rate of this process (not images / hours since the run began, which mixes machines and
            # sessions: a run started on a GPU and resumed on a CPU would report the GPU's rate for hours).
            record = {"step": step, "images": images_seen, "loss": loss_avg, "hours": elapsed / 3600,
                      "img_per_s": (images_seen - images_at_start) / max(elapsed - seconds, 1e-9)}
            if d_loss_avg is not None:
                record["d_loss"] = d_loss_avg
            with open(run / "log.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")
            last_ckpt = time.time()
        if done:
            break
    bar.close()
    if distributed:
        dist.barrier()
        dist.destroy_process_group()
    return run


def _write_model_folder(meta: dict, state: dict[str, torch.Tensor], out: Path) -> None:
    """A model folder in diffusers layout (fp16) from a run's metadata and one set of its weights."""
    from diffusers import UNet2DModel

    unet = UNet2DModel.from_config(meta["unet_config"])
    unet.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
    # The run's parameterization already carries its boundary ("edm" or "cm", see build_models).
    save_model(out, unet, Parameterization.from_dict(meta["param"]))
    stale = out / SCHEDULES_NAME
    if stale.exists():  # tuned ts belong to the weights they were tuned on
        stale.unlink()
        print(f"removed {stale}: tune the new weights with python -m training.tune_ts --model {out}")


def export(run: Path, out: Path, which: str = "ema") -> None:
    """Write the run's EMA (or online) weights as a model folder in diffusers layout, fp16."""
    meta = json.loads((run / "checkpoint.json").read_text())
    _write_model_folder(meta, _section(load_file(run / "checkpoint.safetensors"), which), out)


def export_compact(snapshot: Path, out: Path) -> None:
    """Write a compact snapshot's EMA weights as a model folder, like `export` for a run."""
    meta = json.loads((snapshot / "state.json").read_text())
    _write_model_folder(meta, load_file(snapshot / "ema.safetensors"), out)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m training.train", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    for f in fields(TrainConfig):
        if f.type in ("bool", bool):
            parser.add_argument(f"--{f.name.replace('_', '-')}", action=argparse.BooleanOptionalAction, default=None)
        else:
            kind = {"int": int, "float": float, "str": str}[str(f.type)]
            parser.add_argument(f"--{f.name.replace('_', '-')}", type=kind, default=None)
    parser.add_argument("--resume", action="store_true", help="continue from the run folder's checkpoint")
    parser.add_argument("--export", type=Path, default=None,
                        help="write the run's (or, with --warm-start, the snapshot's) EMA weights to this folder and exit")
    parser.add_argument("--save-compact", type=Path, default=None,
                        help="write a git-sized snapshot (fp16 weights + progress) of the run to this folder and exit")
    parser.add_argument("--warm-start", type=Path, default=None,
                        help="start from a compact snapshot (fresh optimizer, re-warmed learning rate)")
    args = vars(parser.parse_args(argv))
    resume, export_to = args.pop("resume"), args.pop("export")
    compact_to, warm_start = args.pop("save_compact"), args.pop("warm_start")
    given = {k: v for k, v in args.items() if v is not None}
    run = Path(given.get("run_dir", TrainConfig.run_dir))
    saved = run / "config.json"
    if warm_start is not None:
        base = config_from_dict(json.loads((warm_start / "state.json").read_text())["config"])
    elif (resume or export_to or compact_to) and saved.exists():
        base = config_from_dict(json.loads(saved.read_text()))
    else:
        base = TrainConfig()
    try:
        cfg = replace(base, **given)
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
    train(cfg, resume=resume, warm_start=warm_start)


if __name__ == "__main__":
    main()
