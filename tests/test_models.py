"""Model folders: ours, and the diffusers conversions of OpenAI's checkpoints (scaled-down UNets with the same
config keys and block types as openai/diffusers-cd_imagenet64_l2 and openai/diffusers-cd_bedroom256_lpips)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from diffusers import ConsistencyModelPipeline, UNet2DModel
from safetensors.torch import save_file

from editing import tasks
from editing.models import ModelLoadError, Runtime, cpu_has_amx, load_model, resolve_runtime
from editing.precond import Denoiser

# openai/diffusers-cd_imagenet64_l2, unet/config.json; widths, depth and heads scaled down, all else as published.
IMAGENET64_UNET = {
    "_class_name": "UNet2DModel",
    "_diffusers_version": "0.17.0.dev0",
    "act_fn": "silu",
    "add_attention": True,
    "attention_head_dim": 8,  # 64
    "attn_norm_num_groups": None,
    "block_out_channels": [8, 16, 24, 32],  # [192, 384, 576, 768]
    "center_input_sample": False,
    "class_embed_type": None,
    "down_block_types": ["ResnetDownsampleBlock2D", "AttnDownBlock2D", "AttnDownBlock2D", "AttnDownBlock2D"],
    "downsample_padding": 1,
    "downsample_type": "resnet",
    "dropout": 0.0,
    "flip_sin_to_cos": True,
    "freq_shift": 0,
    "in_channels": 3,
    "layers_per_block": 1,  # 3
    "mid_block_scale_factor": 1,
    "norm_eps": 1e-05,
    "norm_num_groups": 8,  # 32
    "num_class_embeds": 1000,
    "out_channels": 3,
    "resnet_time_scale_shift": "scale_shift",
    "sample_size": 64,
    "time_embedding_type": "positional",
    "up_block_types": ["AttnUpBlock2D", "AttnUpBlock2D", "AttnUpBlock2D", "ResnetUpsampleBlock2D"],
    "upsample_type": "resnet",
}

# openai/diffusers-cd_bedroom256_lpips: unconditional, 256x256, six levels, no scale-shift norm.
BEDROOM256_UNET = {
    **IMAGENET64_UNET,
    "block_out_channels": [8, 8, 16, 16, 32, 32],  # [256, 256, 512, 512, 1024, 1024]
    "down_block_types": ["ResnetDownsampleBlock2D"] * 3 + ["AttnDownBlock2D"] * 3,
    "up_block_types": ["AttnUpBlock2D"] * 3 + ["ResnetUpsampleBlock2D"] * 3,
    "layers_per_block": 1,  # 2
    "num_class_embeds": None,
    "resnet_time_scale_shift": "default",
    "sample_size": 256,
}

CD_SCHEDULER = {
    "_class_name": "CMStochasticIterativeScheduler",
    "_diffusers_version": "0.17.0.dev0",
    "clip_denoised": True,
    "num_train_timesteps": 40,
    "rho": 7.0,
    "s_noise": 1.0,
    "sigma_data": 0.5,
    "sigma_max": 80.0,
    "sigma_min": 0.002,
}

MODEL_INDEX = {
    "_class_name": "ConsistencyModelPipeline",
    "_diffusers_version": "0.17.0.dev0",
    "scheduler": ["diffusers", "CMStochasticIterativeScheduler"],
    "unet": ["diffusers", "UNet2DModel"],
}


def write_pipeline_folder(folder: Path, unet_config: dict, seed: int = 0) -> Path:
    """A diffusers pipeline folder as on the Hub: model_index.json, unet/, scheduler/."""
    (folder / "unet").mkdir(parents=True)
    (folder / "scheduler").mkdir()
    unet = UNet2DModel.from_config(unet_config)
    g = torch.Generator().manual_seed(seed)
    state = {k: v + 0.02 * torch.randn(v.shape, generator=g) for k, v in unet.state_dict().items()}
    save_file({k: v.contiguous() for k, v in state.items()}, folder / "unet" / "diffusion_pytorch_model.safetensors")
    (folder / "unet" / "config.json").write_text(json.dumps(unet_config, indent=2))
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(CD_SCHEDULER, indent=2))
    (folder / "model_index.json").write_text(json.dumps(MODEL_INDEX, indent=2))
    return folder


@pytest.fixture(scope="module")
def imagenet_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pipeline_folder(tmp_path_factory.mktemp("hub") / "cd_imagenet64_l2", IMAGENET64_UNET)


@pytest.fixture(scope="module")
def bedroom_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_pipeline_folder(tmp_path_factory.mktemp("hub") / "cd_bedroom256_lpips", BEDROOM256_UNET, seed=1)


def test_imagenet64_loader(imagenet_dir: Path, cpu_runtime: Runtime) -> None:
    model = load_model(imagenet_dir, cpu_runtime)
    p = model.param
    assert (p.boundary, p.resolution, p.pixel_unshuffle, p.time_scale) == ("cm", 64, 1, 250.0)
    assert (p.sigma_min, p.sigma_max, p.sigma_data, p.rho) == (0.002, 80.0, 0.5, 7.0)
    assert len(p.class_names) == 1000 and len(set(p.class_names)) == 1000
    assert p.class_names[0] == "tench" and p.class_names[145] == "king penguin"
    assert isinstance(model.unet, UNet2DModel)
    assert list(model.unet.config.down_block_types) == IMAGENET64_UNET["down_block_types"]
    assert model.unet.config.resnet_time_scale_shift == "scale_shift"
    x = torch.randn(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    assert model(x, 1.0, torch.tensor([145])).shape == (1, 3, 64, 64)
    with pytest.raises(ValueError, match="class"):
        model(x, 1.0)


def test_imagenet64_matches_diffusers_from_pretrained(imagenet_dir: Path, cpu_runtime: Runtime) -> None:
    """The folder is a real diffusers pipeline: diffusers' own loader and sampler give our image."""
    model = load_model(imagenet_dir, cpu_runtime)
    ours = (tasks.generate(model, [0], label=145) + 1) / 2
    pipe = ConsistencyModelPipeline.from_pretrained(imagenet_dir)
    pipe.set_progress_bar_config(disable=True)
    theirs = pipe(num_inference_steps=1, class_labels=145, generator=torch.Generator().manual_seed(0),
                  output_type="pt").images
    assert ours.shape == theirs.shape == (1, 3, 64, 64)
    assert (ours - theirs).abs().max().item() < 1e-5


def test_bedroom256_loader(bedroom_dir: Path, cpu_runtime: Runtime) -> None:
    model = load_model(bedroom_dir, cpu_runtime)
    p = model.param
    assert (p.resolution, p.class_names, p.time_scale) == (256, (), 250.0)
    assert model.unet.config.num_class_embeds is None
    assert model.unet.config.resnet_time_scale_shift == "default"
    x = torch.randn(1, 3, 256, 256, generator=torch.Generator().manual_seed(0))
    out = model(x, torch.tensor([2.0]))
    assert out.shape == (1, 3, 256, 256) and torch.isfinite(out).all()
    assert torch.equal(model(x, 0.002), x)  # the CM boundary condition holds for the official layout too
    with pytest.raises(ValueError, match="unconditional"):
        tasks.generate(model, [0], label=3)


def test_our_folder_loads(tiny_model_dir: Path, cpu_runtime: Runtime) -> None:
    model = load_model(tiny_model_dir, cpu_runtime)
    assert isinstance(model, Denoiser) and model.param.class_names == ("twemoji", "noto", "fluent3d")
    assert next(model.unet.parameters()).dtype == torch.float32 and not model.unet.training
    bf16 = load_model(tiny_model_dir, Runtime(torch.device("cpu"), torch.float32, torch.bfloat16))
    assert bf16.autocast_dtype == torch.bfloat16


def copy_of(src: Path, tmp_path: Path) -> Path:
    dst = tmp_path / src.name
    shutil.copytree(src, dst)
    return dst


def test_missing_files_are_named(imagenet_dir: Path, tmp_path: Path, cpu_runtime: Runtime) -> None:
    with pytest.raises(ModelLoadError, match="model folder not found"):
        load_model(tmp_path / "nowhere", cpu_runtime)
    folder = copy_of(imagenet_dir, tmp_path)
    (folder / "unet" / "diffusion_pytorch_model.safetensors").unlink()
    with pytest.raises(ModelLoadError, match="diffusion_pytorch_model.safetensors"):
        load_model(folder, cpu_runtime)
    (folder / "scheduler" / "scheduler_config.json").unlink()
    with pytest.raises(ModelLoadError, match="scheduler_config.json"):
        load_model(folder, cpu_runtime)
    (folder / "unet" / "config.json").unlink()
    with pytest.raises(ModelLoadError, match="config.json"):
        load_model(folder, cpu_runtime)


def test_corrupt_files_are_named(imagenet_dir: Path, tmp_path: Path, cpu_runtime: Runtime) -> None:
    folder = copy_of(imagenet_dir, tmp_path)
    weights = folder / "unet" / "diffusion_pytorch_model.safetensors"
    weights.write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ModelLoadError, match="diffusion_pytorch_model.safetensors.*safetensors"):
        load_model(folder, cpu_runtime)
    (folder / "unet" / "config.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match=r"config\.json.*JSON"):
        load_model(folder, cpu_runtime)


def test_mismatched_files_are_named(imagenet_dir: Path, bedroom_dir: Path, tmp_path: Path,
                                    cpu_runtime: Runtime) -> None:
    folder = copy_of(imagenet_dir, tmp_path)
    shutil.copy(bedroom_dir / "unet" / "diffusion_pytorch_model.safetensors", folder / "unet")
    with pytest.raises(ModelLoadError, match="diffusion_pytorch_model.safetensors.*do not match"):
        load_model(folder, cpu_runtime)
    folder = copy_of(bedroom_dir, tmp_path / "b")
    sched = {**CD_SCHEDULER, "_class_name": "KarrasVeScheduler"}
    (folder / "scheduler" / "scheduler_config.json").write_text(json.dumps(sched))
    with pytest.raises(ModelLoadError, match="scheduler_config.json.*CMStochasticIterativeScheduler"):
        load_model(folder, cpu_runtime)


def test_our_folder_checksums_and_parameterization(tiny_model_dir: Path, tmp_path: Path,
                                                   cpu_runtime: Runtime) -> None:
    folder = copy_of(tiny_model_dir, tmp_path)
    param = json.loads((folder / "parameterization.json").read_text())
    (folder / "parameterization.json").write_text(json.dumps({**param, "sigma_data": 0.6}))
    with pytest.raises(ModelLoadError, match="parameterization.json.*sha256"):
        load_model(folder, cpu_runtime)
    (folder / "SHA256SUMS").unlink()
    (folder / "parameterization.json").write_text(json.dumps({**param, "boundary": "vp"}))
    with pytest.raises(ModelLoadError, match="parameterization.json"):
        load_model(folder, cpu_runtime)
    (folder / "parameterization.json").write_text(json.dumps({**param, "class_names": ["a", "b"]}))
    with pytest.raises(ModelLoadError, match="class"):
        load_model(folder, cpu_runtime)


@pytest.mark.skipif(not Path("/proc/cpuinfo").is_file(), reason="needs Linux's /proc/cpuinfo")
def test_cpu_has_amx_agrees_with_the_kernel() -> None:
    """Training's bf16 switch reads torch's CPUID probe; the kernel's flags are an independent witness."""
    flags = set()
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("flags"):
            flags.update(line.split(":", 1)[1].split())
    assert cpu_has_amx() == ("amx_tile" in flags)


def test_resolve_runtime() -> None:
    rt = resolve_runtime("cpu", precision="bf16")
    assert rt.device == torch.device("cpu") and rt.weight_dtype == torch.float32 and rt.autocast_dtype == torch.bfloat16
    assert resolve_runtime("cpu", precision="fp32").autocast_dtype is None
    # the function's own defaults are fp32 eager PyTorch on every CPU (the studio and the CLI ask for "auto")
    assert resolve_runtime("cpu").autocast_dtype is None
    auto = resolve_runtime("auto")
    assert auto.device.type == ("cuda" if torch.cuda.is_available() else "cpu")
    if torch.cuda.is_available():
        assert auto.weight_dtype == torch.float16 and auto.autocast_dtype is None
    else:
        with pytest.raises(ValueError, match="CUDA"):
            resolve_runtime("cuda")
    with pytest.raises(ValueError, match="device"):
        resolve_runtime("tpu")


@pytest.mark.parametrize("native", [True, False])
def test_precision_auto_takes_bf16_for_tiled_models_only_on_native_bf16(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                       native: bool) -> None:
    from editing import models
    from editing.runtimes import runtime_name
    from tests.conftest import make_tiny_folder

    monkeypatch.setattr(models, "cpu_has_native_bf16", lambda: native)
    monkeypatch.setattr(models, "cpu_has_amx", lambda: False)
    rt = resolve_runtime("cpu", backend="onnxruntime", precision="auto")
    assert rt.autocast_dtype is None and rt.tiled_autocast_dtype == (torch.bfloat16 if native else None)
    tiled = load_model(make_tiny_folder(tmp_path / "tiled", classes=(), tiled=True), rt)
    untiled = load_model(make_tiny_folder(tmp_path / "untiled", classes=()), rt)
    assert tiled.autocast_dtype == (torch.bfloat16 if native else None)
    assert untiled.autocast_dtype is None
    if native:  # autocast runs the eager UNet; the untiled model keeps the fp32 backend
        assert runtime_name(tiled.unet) == "eager"
    assert resolve_runtime("cpu", precision="bf16").autocast_dtype == torch.bfloat16
    assert resolve_runtime("cpu", precision="fp32").tiled_autocast_dtype is None
    with pytest.raises(ValueError, match="precision"):
        resolve_runtime("cpu", precision="fp8")


@pytest.mark.parametrize("backend", ["onnxruntime", "openvino", "eager"])
def test_precision_auto_on_amx_runs_untiled_models_through_openvino_bf16(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                        backend: str) -> None:
    from editing import models, runtimes
    from editing.runtimes import runtime_name
    from tests.conftest import make_tiny_folder

    if not runtimes.openvino_available():
        pytest.skip("openvino not installed")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(models, "cpu_has_native_bf16", lambda: True)
    monkeypatch.setattr(models, "cpu_has_amx", lambda: True)
    rt = resolve_runtime("cpu", backend=backend, precision="auto")
    untiled = load_model(make_tiny_folder(tmp_path / "untiled", classes=()), rt)
    tiled = load_model(make_tiny_folder(tmp_path / "tiled", classes=(), tiled=True), rt)
    if backend == "eager":  # asked for PyTorch itself: fp32, as on any other CPU
        assert runtime_name(untiled.unet) == "eager" and untiled.autocast_dtype is None
    else:
        assert runtime_name(untiled.unet) == "openvino" and untiled.unet.precision == torch.bfloat16
        assert untiled.autocast_dtype is None
    # a tiled model keeps bf16 autocast on eager PyTorch, as fast as OpenVINO's bf16 at its tile batch
    assert runtime_name(tiled.unet) == "eager" and tiled.autocast_dtype == torch.bfloat16
    monkeypatch.setattr(models, "cpu_has_amx", lambda: False)  # AVX512-BF16 alone: untiled models stay fp32
    assert resolve_runtime("cpu", backend=backend, precision="auto").converted_dtype == torch.float32
    fp32 = resolve_runtime("cpu", backend=backend, precision="fp32")
    assert fp32.converted_dtype == torch.float32 and fp32.tiled_autocast_dtype is None and fp32.backend == backend


def test_save_model_writes_the_same_config_in_every_process(tmp_path: Path) -> None:
    """diffusers' `_use_default_values` comes in hash order, which differs between processes (PYTHONHASHSEED):
    two processes that save the same net must still write the same bytes."""
    script = (
        "import sys, torch\n"
        "from editing.models import save_model\n"
        "from editing.precond import Parameterization\n"
        "from training.nets import build_unet\n"
        "torch.manual_seed(0)\n"
        "unet, k = build_unet('tiny', 16, 0)\n"
        "save_model(sys.argv[1], unet, Parameterization(resolution=16, pixel_unshuffle=k))\n"
    )
    root = Path(__file__).resolve().parents[1]
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        subprocess.run([sys.executable, "-c", script, str(tmp_path / seed)], cwd=root, env=env, check=True)
    configs = {(tmp_path / seed / "config.json").read_bytes() for seed in ("1", "2", "3")}
    assert len(configs) == 1
    defaults = json.loads(configs.pop())["_use_default_values"]
    assert defaults == sorted(defaults) and len(defaults) > 1
