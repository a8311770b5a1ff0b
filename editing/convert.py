"""Turn a `.bin` (pickle) checkpoint folder in diffusers layout into safetensors the loader accepts.

OpenAI's diffusers conversions (e.g. `openai/diffusers-cd_imagenet64_lpips`, `cd_bedroom256_lpips`) ship only
`unet/diffusion_pytorch_model.bin`. `editing.models` never unpickles (a pickle can run any code); this reads
each `.bin` with `torch.load(weights_only=True)`, PyTorch's restricted unpickler that builds only tensors and
plain containers and refuses any other global (a class instance, an `os.system` reduce) before calling it.
Everything that comes out must be a name -> floating-point tensor map, or the file is refused.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import torch
from safetensors.torch import save_file

from editing.models import SUMS_NAME, ModelLoadError, sha256_file

LISTED_SUFFIXES = (".json", ".safetensors")  # what SHA256SUMS covers: configs and weights, never pickles


def read_pickled_state(path: Path) -> dict[str, torch.Tensor]:
    """A state dict from a `.bin` through the weights-only unpickler; ModelLoadError for anything else."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, AttributeError, ValueError) as e:
        first = str(e).strip().splitlines()[0][:300] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"{path}: refused, not a plain tensor checkpoint ({first})") from None
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]  # some trainers nest the weights one level down
    if not isinstance(state, dict) or not state:
        raise ModelLoadError(f"{path}: refused, expected a non-empty dict of tensors, got {type(state).__name__}")
    bad = [str(k) for k, v in state.items()
           if not isinstance(k, str) or not isinstance(v, torch.Tensor) or not v.is_floating_point()]
    if bad:
        raise ModelLoadError(f"{path}: refused, entries that are not named floating-point tensors: {bad[:5]}")
    return state


def convert_folder(folder: str | Path, *, overwrite: bool = False) -> list[Path]:
    """Write `<name>.safetensors` beside every `<name>.bin` under `folder`, then `folder/SHA256SUMS` over its
    configs and safetensors (the format models.verify_checksums reads). Returns the written paths.

    All `.bin` files are read and checked before anything is written, so a refused file leaves the folder as
    it was. The `.bin` files are left in place (the loader ignores them once safetensors sit beside them).
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelLoadError(f"{folder}: folder not found")
    pickles = sorted(p for p in folder.rglob("*.bin") if p.is_file())
    if not pickles:
        raise ModelLoadError(f"{folder}: no .bin checkpoint found to convert")
    targets = [p.with_suffix(".safetensors") for p in pickles]
    existing = [t for t in targets if t.exists()]
    if existing and not overwrite:
        raise ModelLoadError(f"{existing[0]}: already exists; pass --overwrite to replace it")
    # 1. Read everything first (clone: safetensors refuses tensors that share storage).
    states = [{k: v.detach().contiguous().clone() for k, v in read_pickled_state(p).items()} for p in pickles]
    # 2. Write the weights, then the sums over every config and safetensors file, relative to `folder`.
    for state, target in zip(states, targets):
        save_file(state, target, metadata={"format": "pt", "converted_from": target.with_suffix(".bin").name})
    listed = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in LISTED_SUFFIXES)
    sums = folder / SUMS_NAME
    sums.write_text("".join(f"{sha256_file(p)}  {p.relative_to(folder).as_posix()}\n" for p in listed))
    return targets + [sums]
