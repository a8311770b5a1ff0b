"""Section 1, speed: ms per evaluation, achieved GFLOP/s against a measured matmul peak (the roofline ratio),
the engine's overhead over raw network time, our sampler against diffusers' ConsistencyModelPipeline, and the
wall time of every task in editing/tasks.py."""

from __future__ import annotations

import copy
import time
from dataclasses import dataclass
from pathlib import Path
from types import SimpleNamespace

import torch
import torch.nn.functional as F
from diffusers import CMStochasticIterativeScheduler, ConsistencyModelPipeline
from torch.utils.flop_counter import FlopCounterMode

from benchmarks.common import Budget, Table, sync, time_ms
from editing import tasks
from editing.models import Runtime, cpu_has_native_bf16, load_model
from editing.precond import Denoiser
from editing.runtimes import OPENVINO_MAX_BATCH, ConvertedUNet, eager_unet, prepare_unet
from editing.samplers import generators_for
from editing.schedules import PRESETS, Schedule, uniform


@dataclass(frozen=True)
class Variant:
    """A way to run the same network: weight dtype, autocast dtype, memory format."""

    name: str
    weight_dtype: torch.dtype
    autocast_dtype: torch.dtype | None
    channels_last: bool = False

    @property
    def compute_dtype(self) -> torch.dtype:
        return self.autocast_dtype or self.weight_dtype


def variants(device: torch.device) -> list[Variant]:
    if device.type == "cuda":
        return [Variant("fp32", torch.float32, None), Variant("fp16 weights", torch.float16, None),
                Variant("bf16 autocast", torch.float32, torch.bfloat16),
                Variant("fp16 weights, channels_last", torch.float16, None, True)]
    return [Variant("fp32", torch.float32, None), Variant("bf16 autocast", torch.float32, torch.bfloat16),
            Variant("fp32, channels_last", torch.float32, None, True),
            Variant("bf16 autocast, channels_last", torch.float32, torch.bfloat16, True)]


def with_variant(model: Denoiser, variant: Variant) -> Denoiser:
    """A Denoiser over a copy of the UNet in the variant's dtype and memory format."""
    unet = copy.deepcopy(eager_unet(model.unet))
    if next(unet.parameters()).dtype != variant.weight_dtype:
        unet = unet.to(dtype=variant.weight_dtype)
    if variant.channels_last:
        unet = unet.to(memory_format=torch.channels_last)
    return Denoiser(unet, model.param, variant.autocast_dtype)


def inputs(model: Denoiser, batch: int, device: torch.device, seed: int = 0
           ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """A noisy batch at sigma = 1 with labels 0, drawn from an explicit generator."""
    r = model.param.resolution
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, 3, r, r, generator=g).to(device)
    sigma = torch.ones(batch, device=device)
    labels = torch.zeros(batch, dtype=torch.long, device=device) if model.param.class_names else None
    return x, sigma, labels


def count_flops(fn) -> int:
    """FLOPs of one call (matmuls and convolutions, as torch.utils.flop_counter counts them)."""
    with torch.inference_mode(), FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


MATMUL_SIDES = {"cpu": (1024, 2048), "cuda": (8192,)}  # a 1024 matmul alone stayed below oneDNN's conv rate
# A matmul this long already fills the machine: a larger side only costs time (8 x per doubling). Where a dtype is
# emulated (bf16 without AVX512-BF16 or AMX) one 2048 matmul takes many seconds.
SATURATED_SECONDS = 0.5


def matmul_peak(device: torch.device, dtype: torch.dtype, reps: int) -> float:
    """Best GFLOP/s of a square matmul (of the sizes MATMUL_SIDES, up to the first whose call takes
    SATURATED_SECONDS; one timed call at such a side), the roofline's compute ceiling for `dtype`."""
    g = torch.Generator().manual_seed(0)
    rate = 0.0
    for n in MATMUL_SIDES[device.type]:
        a = torch.randn(n, n, generator=g).to(device, dtype)
        b = torch.randn(n, n, generator=g).to(device, dtype)
        with torch.inference_mode():
            sync(device)
            start = time.perf_counter()
            torch.mm(a, b)  # the warm-up, timed only to size what follows
            sync(device)
            saturated = time.perf_counter() - start >= SATURATED_SECONDS
            best = float("inf")
            for _ in range(1 if saturated else max(3, reps // 2)):
                sync(device)
                start = time.perf_counter()
                torch.mm(a, b)
                sync(device)
                best = min(best, time.perf_counter() - start)
        rate = max(rate, 2 * n**3 / best / 1e9)
        if saturated:
            break
    return rate


def unet_widths(model: Denoiser) -> tuple[int, ...]:
    """The UNet's block widths (diffusers' block_out_channels)."""
    return tuple(int(c) for c in model.unet.config.block_out_channels)


def conv_peak(widths: tuple[int, ...], resolution: int, device: torch.device, dtype: torch.dtype, reps: int
              ) -> tuple[float, int]:
    """Best GFLOP/s of a 3x3 convolution (c -> c, batch 64, channels_last) over the net's widths, and the width
    that reached it: the ceiling for the layers that make up 94% of the net's FLOPs."""
    best_rate, best_width = 0.0, widths[0]
    side = max(4, resolution // 2)
    batch = 64 if device.type == "cpu" else 512
    g = torch.Generator().manual_seed(0)
    for c in widths:
        x = torch.randn(batch, c, side, side, generator=g).to(device, dtype).to(memory_format=torch.channels_last)
        w = torch.randn(c, c, 3, 3, generator=g).to(device, dtype).to(memory_format=torch.channels_last)
        ms = time_ms(lambda: torch.nn.functional.conv2d(x, w, padding=1), device, max(3, reps))
        rate = 2 * batch * c * c * 9 * side * side / (ms / 1e3) / 1e9
        if rate > best_rate:
            best_rate, best_width = rate, c
    return best_rate, best_width


RUNTIME_NAMES = {"onnxruntime": "ONNX Runtime", "openvino": "OpenVINO"}


def converted_denoiser(model: Denoiser, backend: str, dtype: torch.dtype = torch.float32) -> Denoiser | None:
    """The model's UNet converted for `backend` (editing.runtimes, cached on disk) computing in `dtype`, every
    batch through it, or None where that runtime is not installed or the model is not a CPU fp32 one."""
    # every_batch: each row through the runtime, which is how the routing of large batches was chosen
    side = model.param.resolution // model.param.pixel_unshuffle
    unet = prepare_unet(eager_unet(model.unet), backend, side, every_batch=True, dtype=dtype)
    return Denoiser(unet, model.param, None) if isinstance(unet, ConvertedUNet) else None


def converted_denoisers(model: Denoiser, budget: Budget) -> list[tuple[str, torch.dtype, Denoiser]]:
    """(runtime name, what it computes in, converted model) for each installed runtime the budget asks for:
    ONNX Runtime and OpenVINO in fp32, and OpenVINO in bf16 on a CPU with native bf16."""
    if not budget.runtimes:
        return []
    asked = [(b, torch.float32) for b in RUNTIME_NAMES]
    if cpu_has_native_bf16():
        asked.append(("openvino", torch.bfloat16))
    found = [(RUNTIME_NAMES[b], dtype, converted_denoiser(model, b, dtype)) for b, dtype in asked]
    return [(name, dtype, m) for name, dtype, m in found if m is not None]


def dtype_name(dtype: torch.dtype) -> str:
    return str(dtype).replace("torch.", "").replace("float32", "fp32").replace("bfloat16", "bf16")


def engine_tile_batch(device: torch.device) -> int:
    """The tile batch the engine uses on this device (editing.tiling.TILE_BATCH)."""
    from editing.tiling import TILE_BATCH

    return TILE_BATCH.get(device.type, 64)


def speed_batches(budget: Budget, device: torch.device) -> tuple[int, ...]:
    """The budget's batch sizes plus the engine's tile batch, in order."""
    extra = {engine_tile_batch(device)} if budget.speed_tile_batch else set()
    return tuple(sorted(set(budget.speed_batches) | extra))


def timing_reps(budget: Budget, batch: int) -> int:
    """Repetitions per timing: the budget's at small batches, a third of them (at least 2) above batch 8."""
    return budget.reps if batch <= 8 else max(2, budget.reps // 3)


def speed_table(model: Denoiser, device: torch.device, budget: Budget, model_name: str, key: str = "speed") -> Table:
    """ms per evaluation per batch and variant, GFLOP/s and its share of the measured matmul and conv peaks."""
    table = Table(key, f"Speed per network evaluation ({model_name})",
                  ["variant", "batch", "ms / eval", "ms / image", "GFLOP / eval", "GFLOP/s", "% of matmul peak",
                   "% of conv peak"])
    peaks: dict[torch.dtype, tuple[float, float, int]] = {}
    widths = unet_widths(model)
    eager_flops: dict[int, int] = {}  # fp32 eager FLOPs per batch: the converted rows run the same network

    def add_row(name: str, net: Denoiser, batch: int, dtype: torch.dtype, flops: int | None = None) -> int:
        """Time `net` at `batch` and add its row; FLOPs counted on `net` unless given. Returns the FLOPs."""
        x, sigma, labels = inputs(net, batch, device)
        flops = count_flops(lambda: net(x, sigma, labels)) if flops is None else flops
        ms = time_ms(lambda: net(x, sigma, labels), device, timing_reps(budget, batch))
        achieved = flops / (ms / 1e3) / 1e9
        mm_peak, cv_peak, _ = peaks[dtype]
        table.add(name, batch, ms, ms / batch, flops / 1e9, achieved, 100 * achieved / mm_peak,
                  100 * achieved / cv_peak)
        return flops

    for variant in variants(device):
        m = with_variant(model, variant)
        dtype = variant.compute_dtype
        if dtype not in peaks:
            peaks[dtype] = (matmul_peak(device, dtype, budget.reps),
                            *conv_peak(widths, model.param.resolution // model.param.pixel_unshuffle, device, dtype,
                                       budget.reps))
        for batch in speed_batches(budget, device):
            flops = add_row(variant.name, m, batch, dtype)
            if dtype == torch.float32:
                eager_flops.setdefault(batch, flops)
    table.notes.append("Measured peaks: " + "; ".join(
        f"{str(k).replace('torch.', '')} matmul {v[0]:.0f} GFLOP/s, 3x3 conv {v[1]:.0f} GFLOP/s (width {v[2]})"
        for k, v in peaks.items())
        + f" (matmul: torch.mm, best of sides {', '.join(map(str, MATMUL_SIDES[device.type]))} up to the first that "
        f"takes {SATURATED_SECONDS:g} s"
        + f"; conv: c -> c at the net's widths {widths}, channels_last, best of reps).")
    eager = with_variant(model, Variant("fp32", torch.float32, None))
    converted = converted_denoisers(model, budget) if device.type == "cpu" else []
    for name, dtype, net in converted:
        diffs = []
        for batch in speed_batches(budget, device):
            add_row(f"{dtype_name(dtype)}, {name}", net, batch, dtype, eager_flops[batch])
            x, sigma, labels = inputs(model, batch, device)
            with torch.inference_mode():
                diffs.append(float((net(x, sigma, labels) - eager(x, sigma, labels)).abs().max()))
        table.notes.append(f"{name} in {dtype_name(dtype)}: max |x0 - fp32 eager x0| = {max(diffs):.1e} over these "
                           "batches.")
    if not converted:
        table.notes.append("ONNX Runtime / OpenVINO rows skipped: not installed, not asked for or not a CPU fp32 model.")
    if budget.speed_tile_batch:
        table.notes.append(f"Batch {engine_tile_batch(device)} is the engine's tile batch on {device.type} "
                           "(editing.tiling.TILE_BATCH).")
    table.notes.append("One evaluation = the Denoiser's forward (scalings in fp32 + UNet); FLOPs counted by "
                       "torch.utils.flop_counter.FlopCounterMode (convolutions, matmuls, attention).")
    return table


def threads_table(model: Denoiser, device: torch.device, budget: Budget, model_name: str) -> Table:
    """ms per image at batch 1 and the tile batch with 1 thread and with one per core, eager and each converted
    runtime (a converted network takes its thread count when it is built, so each is rebuilt per setting)."""
    import os

    table = Table("threads", f"Threads: ms per image by thread count ({model_name}, fp32)",
                  ["runtime", "threads", "batch", "ms / image"])
    before = torch.get_num_threads()
    cores = os.cpu_count() or 1
    try:
        for threads in sorted({1, cores}):
            torch.set_num_threads(threads)
            nets = [("PyTorch eager", with_variant(model, Variant("fp32", torch.float32, None)))]
            nets += [(f"{runtime} {dtype_name(dtype)}", net)
                     for runtime, dtype, net in converted_denoisers(model, budget)]
            for name, net in nets:
                for batch in (1, engine_tile_batch(device)):
                    x, sigma, labels = inputs(net, batch, device)
                    ms = time_ms(lambda: net(x, sigma, labels), device, timing_reps(budget, batch))
                    table.add(name, threads, batch, ms / batch)
    finally:
        torch.set_num_threads(before)
    table.notes.append(f"{cores} cores reported by os.cpu_count(); the studio, the CLI and the benchmarks use "
                       "torch's default (one thread per core), which the converted runtimes take too.")
    return table


def overhead_table(model: Denoiser, device: torch.device, budget: Budget) -> Table:
    """Engine wall time over raw network time: one-step generation and the default 18-step edit."""
    table = Table("overhead", "Engine overhead over raw network time",
                  ["run", "batch", "evaluations", "engine ms", "raw network ms", "overhead ms", "engine / raw"])
    p = model.param
    r = p.resolution
    label = 0 if p.class_names else None
    mask = torch.zeros(1, 1, r, r, dtype=torch.bool)
    mask[..., r // 4: 3 * r // 4, r // 4: 3 * r // 4] = True
    for batch in budget.speed_batches:
        x, sigma, labels = inputs(model, batch, device)
        t = torch.full((batch,), float(p.time_scale), device=device)  # any time input costs the same
        raw = time_ms(lambda: model.network(x, t, labels), device, budget.reps)
        seeds = list(range(batch))
        gen = time_ms(lambda: tasks.generate(model, seeds, label=label), device, budget.reps)
        table.add("generate, 1 step", batch, 1, gen, raw, gen - raw, gen / raw)
        if batch == 1:
            y = x[:1].clamp(-1, 1)
            n = tasks.DEFAULT_EDIT.evaluations
            ed = time_ms(lambda: tasks.inpaint(model, y, mask, [0], label=label), device, max(1, budget.reps // 2))
            table.add(f"inpaint, default {n}-step edit", batch, n, ed, n * raw, ed - n * raw, ed / (n * raw))
    table.notes.append("Raw network = Denoiser.network (pixel (un)shuffle + UNet under the runtime's autocast); "
                       "the engine adds scalings, noise draws (one generator per image), clamping and replacement.")
    return table


class PixelShuffledUNet(torch.nn.Module):
    """A pixel_unshuffle model's UNet seen as a plain RGB UNet (space-to-depth in, depth-to-space out, as
    Denoiser.network does), so that diffusers' pipeline runs the shipped model itself."""

    def __init__(self, unet: torch.nn.Module, factor: int):
        super().__init__()
        self.unet, self.factor = unet, factor
        c = unet.config
        self.config = SimpleNamespace(**{**dict(c), "in_channels": c.in_channels // factor**2,
                                         "out_channels": c.out_channels // factor**2,
                                         "sample_size": c.sample_size * factor})

    @property
    def dtype(self) -> torch.dtype:
        return next(self.unet.parameters()).dtype

    @property
    def device(self) -> torch.device:  # the pipeline's _execution_device asks its modules for one
        return next(self.unet.parameters()).device

    def forward(self, sample: torch.Tensor, timestep: torch.Tensor, class_labels: torch.Tensor | None = None,
                return_dict: bool = True) -> SimpleNamespace | tuple[torch.Tensor]:
        out = self.unet(F.pixel_unshuffle(sample, self.factor), timestep, class_labels=class_labels).sample
        out = F.pixel_shuffle(out, self.factor)
        return SimpleNamespace(sample=out) if return_dict else (out,)


def diffusers_pipeline(model: Denoiser, schedule: Schedule) -> ConsistencyModelPipeline:
    """diffusers' pipeline on the model's eager fp32 UNet (wrapped where it is pixel-unshuffled)."""
    p = model.param
    scheduler = CMStochasticIterativeScheduler(
        num_train_timesteps=schedule.n, sigma_min=p.sigma_min, sigma_max=p.sigma_max, sigma_data=p.sigma_data,
        rho=p.rho, clip_denoised=True)
    unet = eager_unet(model.unet)
    if p.pixel_unshuffle > 1:
        unet = PixelShuffledUNet(unet, p.pixel_unshuffle)
    pipe = ConsistencyModelPipeline(unet=unet, scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    return pipe


def diffusers_table(models: list[tuple[str, Denoiser]], device: torch.device, budget: Budget) -> Table:
    """Our Algorithm 1 (editing.tasks.generate) against diffusers' ConsistencyModelPipeline, same UNet and noise:
    ours on eager PyTorch and on each converted runtime, theirs on eager PyTorch (what the pipeline runs)."""
    table = Table("diffusers", "Our multistep sampler vs diffusers ConsistencyModelPipeline (theirs: fp32 eager; "
                  "same UNet, steps and per-image generators)",
                  ["network", "steps", "batch", "ours: runtime", "ours ms", "diffusers ms", "diffusers / ours",
                   "max |diff|", "mean |diff|"])
    for name, model in models:
        ours_on = [("PyTorch eager", model)]
        if device.type == "cpu":
            ours_on += [(f"{runtime} {dtype_name(dtype)}", net)
                        for runtime, dtype, net in converted_denoisers(model, budget)]
            if cpu_has_native_bf16():  # what --precision bf16 runs; its |diff| is bf16's, not the sampler's
                ours_on.append(("PyTorch bf16 autocast", Denoiser(eager_unet(model.unet), model.param, torch.bfloat16)))
        label = 0 if model.param.class_names else None
        for schedule in (PRESETS["1 step"], uniform(2)):
            pipe = diffusers_pipeline(model, schedule)
            steps = list(reversed(schedule.ts[:-1]))
            for batch in budget.diffusers_batches:
                seeds = list(range(batch))
                labels = None if label is None else torch.full((batch,), label, dtype=torch.long, device=device)

                def theirs() -> torch.Tensor:
                    return pipe(batch_size=batch, class_labels=labels, generator=generators_for(seeds),
                                num_inference_steps=None, timesteps=steps, output_type="pt").images

                reps = timing_reps(budget, batch)
                t_theirs = time_ms(theirs, device, reps)
                with torch.inference_mode():
                    reference = theirs().to(device)
                for runtime, net in ours_on:
                    def ours() -> torch.Tensor:
                        return tasks.generate(net, seeds, schedule=schedule, label=label)

                    t_ours = time_ms(ours, device, reps)
                    with torch.inference_mode():
                        diff = ((ours() + 1) / 2 - reference).abs()
                    table.add(name, schedule.evaluations, batch, runtime, t_ours, t_theirs, t_theirs / t_ours,
                              float(diff.max()), float(diff.mean()))
    table.notes.append("diffusers' pipeline runs a pixel_unshuffle UNet (the shipped models') through "
                       "benchmarks.speed.PixelShuffledUNet: the same UNet, the same weights, space-to-depth outside it.")
    table.notes.append("|diff| compares images on [0, 1] (1/255 = 3.9e-03); the pipeline draws the same per-image "
                       "noise. The converted runtimes run the same UNet (editing.runtimes), every batch through them.")
    if device.type == "cpu":
        table.notes.append("On CPU, Denoiser.network forces the math SDPA kernel (chosen for the shipped model's "
                           "<= 64-token attention); at 32 px the tiny preset attends over 256 tokens, where that "
                           "kernel is slower than the default diffusers uses, so part of the eager gap is that choice.")
    return table


def tasks_table(model: Denoiser, teacher: Denoiser | None, device: torch.device, budget: Budget) -> Table:
    """End-to-end wall time of every task in editing.tasks at its default settings, one seed."""
    table = Table("tasks", "Wall time of every task, default settings, one output image",
                  ["task", "settings", "evaluations", "ms", "ms / evaluation"])
    p = model.param
    r = p.resolution
    label = 0 if p.class_names else None
    g = torch.Generator().manual_seed(0)
    image = (torch.rand(1, 3, r, r, generator=g) * 2 - 1).to(device)
    mask = torch.zeros(1, 1, r, r, dtype=torch.bool)
    mask[..., r // 4: 3 * r // 4, r // 4: 3 * r // 4] = True
    noisy = (image + 0.2 * torch.randn(image.shape, generator=g).to(device)).clamp(-1.5, 1.5)
    factor = 4 if r % 4 == 0 else 2
    low = torch.nn.functional.avg_pool2d(image, factor)
    runs = [
        ("generate", "1 step", model, lambda cb: tasks.generate(model, [0], label=label, callback=cb)),
        ("inpaint", "editing 18, centre box", model,
         lambda cb: tasks.inpaint(model, image, mask, [0], label=label, callback=cb)),
        ("colorize", "editing 18", model, lambda cb: tasks.colorize(model, image, [0], label=label, callback=cb)),
        ("superresolve", f"editing 18, x{factor}", model,
         lambda cb: tasks.superresolve(model, low, factor, [0], label=label, callback=cb)),
        ("stroke_edit", "strokes (16, 20, 39)", model,
         lambda cb: tasks.stroke_edit(model, image, [0], label=label, callback=cb)),
        ("interpolate_seeds", "8 frames, 1 step", model,
         lambda cb: tasks.interpolate_seeds(model, 0, 1, 8, label=label, callback=cb)),
        ("interpolate_images", "8 frames, (16, 20, 39)", model,
         lambda cb: tasks.interpolate_images(model, image, image.flip(-1), 8, 0, label=label, callback=cb)),
        ("denoise", "sigma estimated, 0 refinement steps", model,
         lambda cb: tasks.denoise(model, noisy, label=label, callback=cb)),
    ]
    if teacher is not None:
        t_label = 0 if teacher.param.class_names else None
        runs.append(("heun_baseline (teacher)", "18 Heun steps", teacher,
                     lambda cb: tasks.heun_baseline(teacher, [0], label=t_label, callback=cb)))
    for name, settings, m, run in runs:
        steps: list[int] = []

        def count(step) -> None:
            steps.append(step.total)

        # The callback only records an int; timing with it on saves a separate counting run.
        ms = time_ms(lambda: run(count), device, max(1, budget.reps // 3), warmup=0 if budget.reps < 5 else 1)
        evaluations = steps[-1] if steps else 0
        table.add(name, settings, evaluations, ms, ms / max(1, evaluations))
    if teacher is None:
        table.notes.append("heun_baseline skipped: no teacher model.")
    table.notes.append("interpolation rows make 8 images (the app's default); the others one. Batch = frames.")
    return table


def photo_runtimes(device: torch.device) -> list[tuple[str, Runtime]]:
    """The ways a CPU can run the photo teacher: eager, each installed converted runtime, bf16 (where native)."""
    from editing.models import resolve_runtime

    if device.type != "cpu":
        return [("fp16 weights", resolve_runtime(str(device)))]
    found = [("fp32, PyTorch eager", resolve_runtime("cpu", precision="fp32"))]
    found += [(f"fp32, {name}", resolve_runtime("cpu", backend=backend, precision="fp32"))
              for backend, name in RUNTIME_NAMES.items()]
    if cpu_has_native_bf16():
        found.append(("bf16 autocast (the default for tiled models here)", resolve_runtime("cpu", precision="bf16")))
    return found


def whole_photo_denoise_table(teacher_folder: Path | None, photo_data: Path, device: torch.device, side: int,
                              reps: int) -> Table:
    """Seconds per megapixel of the photo teacher's one-evaluation denoise of one whole held-out photo under each
    runtime, next to CBM3D's on the same noisy image, and the PSNR each gives (what a precision costs)."""
    from benchmarks.photos import cbm3d
    from benchmarks.whole_photos import WholeBudget, whole_photos
    from editing.metrics import psnr

    table = Table("photo_denoise_speed", f"Denoising one whole held-out photo ({side}x{side}, sigma 25/255): "
                  "time per megapixel by runtime, and CBM3D on the same image",
                  ["method", "runtime", "s", "s / megapixel", "PSNR dB", "vs fp32 eager: max |diff|"])
    has_data = (photo_data / "manifest.jsonl").is_file()
    images = whole_photos(photo_data, WholeBudget(photos=1, side=side)) if has_data else []
    if not images or teacher_folder is None or not teacher_folder.is_dir():
        table.notes.append(f"skipped: needs {photo_data} (python -m training.photos build) and the photo teacher")
        return table
    name, clean = images[0]
    sigma = 25 / 127.5
    noisy = clean + sigma * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    megapixels = side * side / 1e6
    reference: torch.Tensor | None = None
    for how, runtime in photo_runtimes(device):
        teacher = load_model(teacher_folder, runtime)
        with torch.inference_mode():
            tasks.denoise(teacher, noisy[..., :128, :128].to(device), sigma=sigma)  # one-time costs (conversion)
            best, out = float("inf"), noisy
            for _ in range(max(1, reps)):
                started = time.perf_counter()
                out = tasks.denoise(teacher, noisy.to(device), sigma=sigma)[0].cpu()
                best = min(best, time.perf_counter() - started)
        reference = out if reference is None else reference
        table.add(f"teacher, 1 evaluation ({teacher_folder.name})", how, best, best / megapixels,
                  float(psnr(out, clean)), float((out - reference).abs().max()))
    started = time.perf_counter()
    out = cbm3d(noisy, sigma)
    seconds = time.perf_counter() - started
    table.add("CBM3D (true sigma, bm3d 4.0.3)", "its own (NumPy / C)", seconds, seconds / megapixels,
              float(psnr(out, clean)), float("nan"))
    table.notes.append(f"Photo {name} (held out), centre crop; the teacher tiles it (editing.tiling, 64 px tiles "
                       f"overlapping by 16, batch {engine_tile_batch(device)}); true sigma given to both; best of "
                       f"{max(1, reps)} after a warm-up; CBM3D timed once. OpenVINO in fp32 hands batches over "
                       f"{OPENVINO_MAX_BATCH} to eager PyTorch (editing.runtimes.OPENVINO_MAX_BATCH), as "
                       "`--backend openvino` does, so its row is mostly eager's.")
    return table
