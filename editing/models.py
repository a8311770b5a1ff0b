"""Load and save model folders in diffusers layout, plus our `parameterization.json`.

A folder is either a bare UNet (`config.json` + `diffusion_pytorch_model.safetensors`) or a diffusers
pipeline (`unet/` + `scheduler/scheduler_config.json`, as in the diffusers conversions of OpenAI's
consistency models). Weights are read with safetensors only; nothing is unpickled, nothing is fetched.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import torch
from diffusers import UNet2DModel
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from editing.precond import Denoiser, Parameterization
from editing.runtimes import BACKENDS, openvino_available, prepare_unet
from editing.schedules import Schedule

WEIGHTS_NAME = "diffusion_pytorch_model.safetensors"
PARAM_NAME = "parameterization.json"
SCHEDULES_NAME = "schedules.json"  # optional: multistep ts tuned for this network (training.tune_ts)
SUMS_NAME = "SHA256SUMS"
PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt", ".pkl", ".pickle")  # never loaded: unpickling can run code


class ModelLoadError(ValueError):
    """A model folder is missing, malformed or inconsistent; the message names the file."""


@dataclass(frozen=True)
class Runtime:
    """Where and how the network runs. Scalings are always fp32 (see precond)."""

    device: torch.device
    weight_dtype: torch.dtype  # fp16 on CUDA, fp32 on CPU
    autocast_dtype: torch.dtype | None  # bf16 autocast, on CPU only when asked for
    backend: str = "eager"  # CPU fp32 only: "onnxruntime" or "openvino" runs the UNet converted once (editing.runtimes)
    # bf16 autocast for tiled (photo) models only, which always run large tile batches; None: as autocast_dtype
    tiled_autocast_dtype: torch.dtype | None = None
    converted_dtype: torch.dtype = torch.float32  # what OpenVINO computes in: bf16 runs its own bf16 kernels


def cpu_has_amx() -> bool:
    """Whether this CPU has AMX tiles (training takes bf16 autocast only there)."""
    try:
        return bool(torch.cpu._is_amx_tile_supported())
    except (AttributeError, RuntimeError):  # an older torch cannot tell: assume no AMX
        return False


def cpu_has_native_bf16() -> bool:
    """Whether this CPU does bf16 dot products in hardware (AVX512-BF16 or AMX); elsewhere oneDNN emulates them,
    many times slower than fp32."""
    try:
        return bool(torch.cpu._is_avx512_bf16_supported()) or cpu_has_amx()
    except (AttributeError, RuntimeError):
        return False


PRECISIONS = ("auto", "fp32", "bf16")
PRECISION_HELP = ("on CPU: auto takes bf16 where it was measured faster: tiled (photo) models, which run large tile "
                  "batches, under bf16 autocast where the CPU has native bf16 (AVX512-BF16 or AMX), and on an AMX CPU "
                  "the other models through OpenVINO's bf16 (unless --backend eager); everything else in fp32. fp32 or "
                  "bf16 everywhere (bf16 is far slower without native bf16) (default auto)")


def resolve_runtime(device: str = "auto", backend: str = "eager", precision: str = "fp32") -> Runtime:
    """'auto' picks CUDA when present. fp16 weights on CUDA; fp32 weights on CPU, in bf16 with `precision` "bf16":
    OpenVINO's bf16 with `backend` "openvino" (where installed), else eager PyTorch under bf16 autocast.
    `precision` "auto" takes bf16 where `benchmarks --sections speed` measured it faster, at a cost it measures
    too: bf16 autocast for tiled models on a CPU with native bf16 (their large tile batches); on an AMX CPU, the
    other models through OpenVINO's bf16 (faster than any fp32 runtime at every batch), unless `backend` is
    "eager"; the fp32 `backend` for the rest."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    bf16 = precision == "bf16"
    if device not in ("auto", "cpu", "cuda") and not device.startswith("cuda:"):
        raise ValueError(f"device must be auto, cpu or cuda, got {device!r}")
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("device 'cuda' was asked for but CUDA is not available; use --device cpu")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    dev = torch.device(device)
    if dev.type == "cuda":  # CUDA keeps its own path (fp16 weights); backend applies to CPU fp32 only
        return Runtime(dev, torch.float16, None)
    tiled = torch.bfloat16 if precision == "auto" and cpu_has_native_bf16() else None
    openvino_bf16 = backend == "openvino" if bf16 else precision == "auto" and backend != "eager" and cpu_has_amx()
    if openvino_bf16 and openvino_available():
        return Runtime(dev, torch.float32, None, "openvino", tiled, torch.bfloat16)
    return Runtime(dev, torch.float32, torch.bfloat16 if bf16 else None, "eager" if bf16 else backend, tiled)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ModelLoadError(f"{path}: file not found")
    try:
        data = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ModelLoadError(f"{path}: not valid JSON ({e})") from None
    except OSError as e:
        raise ModelLoadError(f"{path}: cannot be read ({e.strerror or e})") from None
    if not isinstance(data, dict):
        raise ModelLoadError(f"{path}: expected a JSON object")
    return data


def unet_folder(folder: Path) -> Path:
    """The folder holding the UNet's config and weights: `folder` itself or `folder/unet`."""
    if (folder / "config.json").is_file():
        return folder
    if (folder / "unet" / "config.json").is_file():
        return folder / "unet"
    raise ModelLoadError(f"{folder}: no config.json (nor unet/config.json): not a model folder")


def imagenet_class_names() -> tuple[str, ...]:
    """The 1000 ImageNet class names, from torchvision's metadata (no download)."""
    from torchvision.models import ResNet50_Weights

    return tuple(ResNet50_Weights.IMAGENET1K_V1.meta["categories"])


def read_schedules(folder: str | Path) -> dict[int, Schedule]:
    """The folder's tuned generation schedules by number of steps ({} when it has no schedules.json).

    Format: {"n": grid points, "ts": {"k": [0, ..., n - 1]}, ...}; each list starts at 0 (sigma_max, where
    generation starts) and has k + 1 indices.
    """
    path = Path(folder) / SCHEDULES_NAME
    if not path.is_file():
        return {}
    data = _read_json(path)
    try:
        n, by_steps = data["n"], data["ts"]
        if not isinstance(by_steps, dict):
            raise ValueError("'ts' must map a number of steps to a list of indices")
        out = {}
        for key, ts in by_steps.items():
            if not isinstance(ts, list):
                raise ValueError(f"ts for {key!r} steps must be a list of indices, got {ts!r}")
            schedule = Schedule(tuple(ts), n)
            if not key.isdigit() or int(key) != schedule.evaluations or schedule.ts[0] != 0:
                raise ValueError(f"ts for {key!r} steps must start at 0 and have {key} + 1 indices, got {ts}")
            out[int(key)] = schedule
        return out
    except KeyError as e:
        raise ModelLoadError(f"{path}: missing key {e}") from None
    except (TypeError, ValueError) as e:
        raise ModelLoadError(f"{path}: {e}") from None


def optional_schedules(folder: str | Path, warn: Callable[[str], None]) -> dict[int, Schedule]:
    """`read_schedules`, except that a broken schedules.json is reported through `warn` and gives {}: the
    tuned ts are optional, and the model works with even ones."""
    try:
        return read_schedules(folder)
    except ModelLoadError as e:
        warn(f"ignoring tuned schedules: {e}")
        return {}


def read_parameterization(folder: Path, unet_config: dict) -> Parameterization:
    """Our parameterization.json, or one inferred from a diffusers CMStochasticIterativeScheduler config."""
    path = folder / PARAM_NAME
    if path.is_file():
        try:
            return Parameterization.from_dict(_read_json(path))
        except (TypeError, ValueError) as e:
            raise ModelLoadError(f"{path}: {e}") from None
    scheduler_path = folder / "scheduler" / "scheduler_config.json"
    if not scheduler_path.is_file():
        raise ModelLoadError(f"{folder}: neither {PARAM_NAME} nor scheduler/scheduler_config.json found")
    sched = _read_json(scheduler_path)
    if sched.get("_class_name") != "CMStochasticIterativeScheduler":
        raise ModelLoadError(f"{scheduler_path}: expected CMStochasticIterativeScheduler, got {sched.get('_class_name')}")
    num_classes = unet_config.get("num_class_embeds") or 0
    if num_classes == 1000:
        class_names = imagenet_class_names()
    else:
        class_names = tuple(f"class {i}" for i in range(num_classes))
    # OpenAI's CMs feed the UNet 1000 * 0.25 * ln(sigma) (diffusers: CMStochasticIterativeScheduler.sigma_to_t).
    return Parameterization(
        boundary="cm",
        sigma_min=float(sched.get("sigma_min", 0.002)),
        sigma_max=float(sched.get("sigma_max", 80.0)),
        sigma_data=float(sched.get("sigma_data", 0.5)),
        rho=float(sched.get("rho", 7.0)),
        time_scale=250.0,
        resolution=int(unet_config["sample_size"]),
        class_names=class_names,
    )


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify_checksums(folder: Path) -> None:
    """Check files listed in SHA256SUMS (written by save_model), if the folder has one."""
    sums = folder / SUMS_NAME
    if not sums.is_file():
        return
    for number, line in enumerate(sums.read_text(errors="replace").splitlines(), 1):
        if not line.strip():
            continue
        parts = line.split(maxsplit=1)
        name = parts[-1].strip().lstrip("*")  # sha256sum's binary-mode marker
        if len(parts) != 2 or len(parts[0]) != 64 or Path(name).is_absolute() or ".." in Path(name).parts:
            raise ModelLoadError(f"{sums}: line {number} is not '<sha256>  <file in this folder>': {line[:100]!r}")
        expected = parts[0].lower()
        path = folder / name
        if not path.is_file():
            raise ModelLoadError(f"{path}: listed in {sums} but missing")
        if sha256_file(path) != expected:
            raise ModelLoadError(f"{path}: sha256 does not match {sums}; the file is corrupt or was changed")


def load_model(folder: str | Path, runtime: Runtime) -> Denoiser:
    """Build the UNet from config.json, load safetensors weights strictly, wrap it in a Denoiser."""
    folder = Path(folder)
    if not folder.is_dir():
        raise ModelLoadError(f"{folder}: model folder not found")
    verify_checksums(folder)
    ufolder = unet_folder(folder)
    config_path = ufolder / "config.json"
    config = _read_json(config_path)
    param = read_parameterization(folder, config)
    if config.get("_class_name", "UNet2DModel") != "UNet2DModel":
        raise ModelLoadError(f"{config_path}: expected a UNet2DModel, got {config.get('_class_name')}")
    try:
        unet = UNet2DModel.from_config(config)
    except Exception as e:  # diffusers raises several types for bad configs
        raise ModelLoadError(f"{config_path}: cannot build UNet2DModel ({e})") from None
    weights_path = ufolder / WEIGHTS_NAME
    if not weights_path.is_file():
        pickles = sorted(p.name for p in ufolder.iterdir() if p.suffix.lower() in PICKLE_SUFFIXES)
        if pickles:
            raise ModelLoadError(f"{weights_path}: file not found; {ufolder} holds only {', '.join(pickles)}: "
                                 "pickle files are never loaded (unpickling can run code); convert them to safetensors with "
                                 f"`python -m editing convert {folder}`")
        raise ModelLoadError(f"{weights_path}: file not found")
    try:
        state = load_file(weights_path)
    except (SafetensorError, OSError) as e:
        raise ModelLoadError(f"{weights_path}: not a readable safetensors file ({e})") from None
    bad = [k for k, v in state.items() if not v.is_floating_point() or not bool(torch.isfinite(v).all())]
    if bad:
        raise ModelLoadError(f"{weights_path}: tensors that are not finite floating-point numbers: {bad[:5]}")
    try:
        unet.load_state_dict(state, strict=True)
    except RuntimeError as e:
        raise ModelLoadError(f"{weights_path}: weights do not match {config_path}: {str(e)[:500]}") from None
    expected_channels = 3 * param.pixel_unshuffle**2
    if unet.config.in_channels != expected_channels or unet.config.out_channels != expected_channels:
        raise ModelLoadError(
            f"{config_path}: in/out channels must be {expected_channels} for pixel_unshuffle={param.pixel_unshuffle}"
        )
    if param.class_names and (unet.config.num_class_embeds or 0) != len(param.class_names):
        raise ModelLoadError(
            f"{folder / PARAM_NAME}: {len(param.class_names)} class names but the UNet has "
            f"{unet.config.num_class_embeds} class embeddings"
        )
    unet = unet.to(device=runtime.device)
    if runtime.weight_dtype != torch.float32:  # a no-op cast would only make diffusers log a warning
        unet = unet.to(dtype=runtime.weight_dtype)
    unet = unet.eval().requires_grad_(False)
    autocast = runtime.tiled_autocast_dtype if param.tiled and runtime.tiled_autocast_dtype else runtime.autocast_dtype
    if autocast is None:  # autocast runs the eager UNet (resolve_runtime picks eager with bf16)
        unet = prepare_unet(unet, runtime.backend, param.resolution // param.pixel_unshuffle,
                            dtype=runtime.converted_dtype)
    return Denoiser(unet, param, autocast)


def save_model(folder: str | Path, unet: UNet2DModel, param: Parameterization, dtype: torch.dtype = torch.float16) -> None:
    """Write config.json, fp16 safetensors, parameterization.json and SHA256SUMS to `folder`."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = dict(unet.config)
    config["_class_name"] = "UNet2DModel"
    # diffusers builds `_use_default_values` from a set (list or set, in hash order, which changes from one
    # process to the next): sorted, so the same weights give the same bytes and sums.
    if "_use_default_values" in config:
        config["_use_default_values"] = sorted(config["_use_default_values"])
    (folder / "config.json").write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    state = {k: v.detach().to("cpu", dtype).contiguous() for k, v in unet.state_dict().items()}
    save_file(state, folder / WEIGHTS_NAME)
    (folder / PARAM_NAME).write_text(json.dumps(param.to_dict(), indent=2) + "\n")
    names = ["config.json", WEIGHTS_NAME, PARAM_NAME]
    (folder / SUMS_NAME).write_text("".join(f"{sha256_file(folder / n)}  {n}\n" for n in names))


EDIT_DENOISERS = ("auto", "teacher", "cm")  # the denoiser inside Algorithm 4 for inpaint, colorize, superresolve


def edits_use_teacher(choice: str | None, param: Parameterization, has_teacher: bool) -> bool:
    """Whether an edit runs Algorithm 4 with the diffusion teacher's D(x, sigma) instead of the consistency model:
    when asked ("teacher"), or by default ("auto") on a tiled (photo) model that has one, where it was measured
    better on every edit (benchmarks' photos section); ValueError for another choice or a missing teacher."""
    choice = (choice or "auto").lower()
    if choice not in EDIT_DENOISERS:
        raise ValueError(f"the edit's denoiser must be one of {', '.join(EDIT_DENOISERS)}, got {choice!r}")
    if choice == "teacher" and not has_teacher:
        raise ValueError("no diffusion teacher beside this model: edit with the consistency model (cm)")
    return choice == "teacher" or (choice == "auto" and has_teacher and param.tiled)
