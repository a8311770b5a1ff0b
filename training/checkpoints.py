"""A run's state on disk: full checkpoints (resume bit-identically), compact snapshots (git-sized), exports.

A checkpoint is `checkpoint.safetensors` (tensors under the prefixes model., ema., target., disc. for networks,
opt. and disc_opt. for Adam's moments, and the generator state) plus `checkpoint.json` (config, parameterization,
UNet config, progress). A compact snapshot is fp16 `model`/`ema`/`disc.safetensors` plus `state.json`. Nothing is
pickled.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn

from editing.models import SCHEDULES_NAME, save_model
from editing.precond import Denoiser, Parameterization


@dataclass(frozen=True, eq=False)
class RunState:
    """The networks, optimizers and generator a checkpoint saves; target and the heads are None when unused."""

    model: Denoiser
    ema: Denoiser
    target: Denoiser | None
    opt: torch.optim.Optimizer
    generator: torch.Generator
    disc: nn.Module | None = None
    disc_opt: torch.optim.Optimizer | None = None

    def networks(self) -> dict[str, nn.Module]:
        nets = {"model": self.model.unet, "ema": self.ema.unet}
        if self.target is not None:
            nets["target"] = self.target.unet
        if self.disc is not None:
            nets["disc"] = self.disc
        return nets

    def optimizers(self) -> dict[str, torch.optim.Optimizer]:
        return {"opt": self.opt} | ({"disc_opt": self.disc_opt} if self.disc_opt is not None else {})


@dataclass(frozen=True)
class Progress:
    """Where a run stands: images and optimizer steps so far, wall seconds, and where the last warm-up began."""

    images: int = 0
    step: int = 0
    seconds: float = 0.0
    warm_from: int = 0

    @classmethod
    def from_meta(cls, meta: dict) -> Progress:
        return cls(meta["images"], meta["step"], meta["seconds"], meta.get("warm_from", 0))


def section(tensors: dict[str, torch.Tensor], name: str) -> dict[str, torch.Tensor]:
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


def save_checkpoint(run: Path, config: dict, state: RunState, progress: Progress) -> None:
    """Write the run's full state atomically (a crash never leaves half a checkpoint)."""
    tensors = {f"{name}.{k}": v for name, net in state.networks().items() for k, v in net.state_dict().items()}
    for name, opt in state.optimizers().items():
        tensors |= _optimizer_tensors(opt, name)
    tensors["generator"] = state.generator.get_state()
    tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
    tmp = run / "checkpoint.tmp.safetensors"
    save_file(tensors, tmp)
    meta = {"config": config, "param": state.model.param.to_dict(), "unet_config": dict(state.model.unet.config),
            "images": progress.images, "step": progress.step, "seconds": progress.seconds,
            "warm_from": progress.warm_from}
    (run / "checkpoint.tmp.json").write_text(json.dumps(meta, indent=2, default=list))
    os.replace(tmp, run / "checkpoint.safetensors")
    os.replace(run / "checkpoint.tmp.json", run / "checkpoint.json")


def load_checkpoint(run: Path, state: RunState) -> Progress:
    """Load a checkpoint into `state` in place; heads absent from it (the run so far was plain CD) start fresh."""
    tensors = load_file(run / "checkpoint.safetensors")
    meta = json.loads((run / "checkpoint.json").read_text())
    for name, net in state.networks().items():
        saved = section(tensors, name)
        if name == "disc" and not saved:
            continue
        net.load_state_dict(saved)
        if name == "disc":
            _load_optimizer(state.disc_opt, tensors, "disc_opt")
    _load_optimizer(state.opt, tensors, "opt")
    state.generator.set_state(tensors["generator"])
    return Progress.from_meta(meta)


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
        state = {k: v.to(torch.float16).contiguous() for k, v in section(tensors, which).items()}
        if state:
            save_file(state, out / f"{which}.safetensors")
    (out / "state.json").write_text(json.dumps(meta, indent=2, default=list) + "\n")


def _fp32(path: Path) -> dict[str, torch.Tensor]:
    return {k: v.to(torch.float32) for k, v in load_file(path).items()}


def load_compact(folder: Path, model: Denoiser, ema: Denoiser, disc: nn.Module | None = None) -> Progress:
    """Load a snapshot's weights (and heads, if it has them; else they start fresh); returns its progress."""
    meta = json.loads((folder / "state.json").read_text())
    if disc is not None and (folder / "disc.safetensors").exists():
        disc.load_state_dict(_fp32(folder / "disc.safetensors"))
    for which, net in (("model", model), ("ema", ema)):
        # A snapshot may hold the EMA alone (its bytes are the exported model's, so git stores them once):
        # the online weights then restart from the EMA.
        path = folder / f"{which}.safetensors"
        net.unet.load_state_dict(_fp32(path if path.exists() else folder / "ema.safetensors"))
    return Progress.from_meta(meta)


def _write_model_folder(meta: dict, state: dict[str, torch.Tensor], out: Path) -> None:
    """A model folder in diffusers layout (fp16) from a run's metadata and one set of its weights."""
    from diffusers import UNet2DModel

    unet = UNet2DModel.from_config(meta["unet_config"])
    unet.load_state_dict({k: v.to(torch.float32) for k, v in state.items()})
    # The run's parameterization already carries its boundary ("edm" or "cm", see train.build_models).
    save_model(out, unet, Parameterization.from_dict(meta["param"]))
    stale = out / SCHEDULES_NAME
    if stale.exists():  # tuned ts belong to the weights they were tuned on
        stale.unlink()
        print(f"removed {stale}: tune the new weights with python -m training.tune_ts --model {out}")


def export(run: Path, out: Path, which: str = "ema") -> None:
    """Write the run's EMA (or online) weights as a model folder in diffusers layout, fp16."""
    meta = json.loads((run / "checkpoint.json").read_text())
    _write_model_folder(meta, section(load_file(run / "checkpoint.safetensors"), which), out)


def export_compact(snapshot: Path, out: Path) -> None:
    """Write a compact snapshot's EMA weights as a model folder, like `export` for a run."""
    meta = json.loads((snapshot / "state.json").read_text())
    _write_model_folder(meta, load_file(snapshot / "ema.safetensors"), out)
