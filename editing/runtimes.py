"""CPU backends for the UNet: eager PyTorch, or the same network converted once to ONNX Runtime or OpenVINO.

The converted network (an ONNX file, or OpenVINO IR) is cached on disk under a key of the weights and the input
shape, so the conversion is paid once; later loads read the file. Where a runtime is not installed the eager UNet is
kept. Speed and agreement with eager are measured by `python -m benchmarks --sections speed`, which is how the
defaults were chosen: ONNX Runtime in fp32 (at every batch size), and OpenVINO in bf16 on AMX CPUs
(editing.models.resolve_runtime).
"""

from __future__ import annotations

import copy
import hashlib
import importlib.util
import os
import sys
import warnings
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import torch
from torch import nn

BACKENDS = ("onnxruntime", "openvino", "eager")
DEFAULT_BACKEND = "onnxruntime"
# Above this batch eager PyTorch (oneDNN) out-ran OpenVINO in fp32 on both shipped models, so "openvino" routes
# larger batches (the engine's tile batches) to the eager UNet; ONNX Runtime out-ran eager at every batch measured.
# OpenVINO in bf16 out-ran both at every batch measured on an AMX CPU, so it takes every batch.
OPENVINO_MAX_BATCH = 8
OPENVINO_PRECISIONS = {torch.float32: "f32", torch.bfloat16: "bf16"}  # its CPU plugin's inference precision hint


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


def onnxruntime_available() -> bool:
    # the export needs `onnx` as well as the runtime
    return importlib.util.find_spec("onnxruntime") is not None and importlib.util.find_spec("onnx") is not None


def import_openvino():  # -> the openvino module
    """openvino with its telemetry off. Its converter sends usage events to Google Analytics unless the user opted
    out, and writes a client id under ~/intel; the studio must not call out. With `openvino_telemetry` unimportable
    the converter takes its own no-op stub, and the names it already bound are pointed at that stub."""
    if "openvino.tools.ovc" not in sys.modules:
        sys.modules.setdefault("openvino_telemetry", None)  # None in sys.modules: `import` raises ImportError
    import openvino
    from openvino.tools.ovc import convert_impl, telemetry_stub

    convert_impl.tm = telemetry_stub
    convert_impl.init_ovc_telemetry = lambda *args, **kwargs: telemetry_stub.Telemetry()
    return openvino


def default_cache_dir(backend: str = "openvino") -> Path:
    """$XDG_CACHE_HOME (else ~/.cache) / consistency-studio / <backend>."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "consistency-studio" / backend


def weights_key(unet: nn.Module, in_channels: int, side: int) -> str:
    """A digest of the UNet's config, weights and input shape: the name of its cached IR."""
    digest = hashlib.sha256(repr(sorted(dict(unet.config).items())).encode())
    digest.update(f"{in_channels}x{side}".encode())
    for name, tensor in sorted(unet.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest.hexdigest()[:32]


class _Body(nn.Module):
    def __init__(self, unet: nn.Module):
        super().__init__()
        self.unet = unet

    def forward(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        return self.unet(x, t, class_labels=labels).sample


class _GivenEmbedding(nn.Module):
    """Stands in for a UNet's `time_proj`: returns the embedding its owner was given for this call."""

    def __init__(self) -> None:
        super().__init__()
        self.value: torch.Tensor | None = None

    def forward(self, timesteps: torch.Tensor) -> torch.Tensor:
        return self.value


class _EmbeddedTimeBody(nn.Module):
    """The UNet with its sinusoidal time embedding (diffusers' `time_proj`) as an input instead of t, so that it is
    computed outside, in fp32. In bf16 (8 bits of mantissa) t itself, up to a few hundred, loses its fractional
    part, and the embedding's fast sines turn to noise: x0 at high sigma moved 6x more than under PyTorch's
    autocast, which keeps sin/cos in fp32."""

    def __init__(self, unet: nn.Module):
        super().__init__()
        self.given = _GivenEmbedding()
        self.unet = copy.copy(unet)  # the same layers; only this copy's time_proj is replaced
        self.unet._modules = {**unet._modules, "time_proj": self.given}

    def forward(self, x: torch.Tensor, t_emb: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        self.given.value = t_emb
        return self.unet(x, t_emb.new_zeros(x.shape[0]), class_labels=labels).sample


class ConvertedUNet(nn.Module):
    """Stands in for a diffusers UNet2DModel (call, `.config`, `.sample`) and runs a converted copy of it in fp32,
    up to `max_batch` images a call (larger batches, and other input sizes, run the eager UNet).

    The eager UNet stays as `.eager` (its parameters give dtype and device; diffusers' pipeline and training
    use it directly). Subclasses build the converted network once (cached under `cache_dir`) and run it."""

    backend = ""

    def __init__(self, unet: nn.Module, side: int, max_batch: int | None):
        super().__init__()
        self.eager = unet
        self.config = unet.config
        self.side = side
        self.max_batch = max_batch  # None: every batch through the converted network
        self.conditional = bool(unet.config.num_class_embeds)
        self.channels = int(unet.config.in_channels)

    def example_inputs(self) -> tuple[torch.Tensor, ...]:
        c, side = self.channels, self.side
        example: tuple[torch.Tensor, ...] = (torch.zeros(1, c, side, side), torch.zeros(1))
        return example + ((torch.zeros(1, dtype=torch.long),) if self.conditional else ())

    def run(self, feeds: list[np.ndarray]) -> np.ndarray:
        raise NotImplementedError

    def forward(self, x: torch.Tensor, t: torch.Tensor, class_labels: torch.Tensor | None = None,
                return_dict: bool = True) -> SimpleNamespace | tuple[torch.Tensor]:
        too_large = self.max_batch is not None and x.shape[0] > self.max_batch
        if too_large or tuple(x.shape[-2:]) != (self.side, self.side):  # converted for one tile size
            return self.eager(x, t, class_labels=class_labels, return_dict=return_dict)
        n = x.shape[0]
        t = t.to(torch.float32).expand(n) if t.ndim == 0 else t.to(torch.float32)
        feeds = [x.detach().to("cpu", torch.float32).contiguous().numpy(), t.to("cpu").contiguous().numpy()]
        if self.conditional:
            if class_labels is None:
                raise ValueError("this UNet is class-conditional: pass class_labels")
            feeds.append(class_labels.to("cpu", torch.long).expand(n).contiguous().numpy())
        sample = torch.from_numpy(self.run(feeds)).to(x.device)
        return SimpleNamespace(sample=sample) if return_dict else (sample,)


def _atomic_write(path: Path, write: Callable[[Path], None]) -> None:
    """Write through a temporary name, so that a reader (another process) never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp{path.suffix}")
    write(tmp)
    tmp.replace(path)


class OnnxRuntimeUNet(ConvertedUNet):
    """The UNet exported once to ONNX (dynamic batch) and run by ONNX Runtime's CPU provider."""

    backend = "onnxruntime"

    def __init__(self, unet: nn.Module, side: int, cache_dir: Path | None = None, max_batch: int | None = None):
        super().__init__(unet, side, max_batch)
        import onnxruntime

        self.input_names = ["x", "t", "labels"][: 3 if self.conditional else 2]  # as example_inputs
        folder = Path(cache_dir or default_cache_dir(self.backend))
        path = folder / f"{weights_key(unet, self.channels, side)}.onnx"
        if not path.is_file():
            names = self.input_names

            def export(tmp: Path) -> None:
                with torch.no_grad(), warnings.catch_warnings():
                    warnings.simplefilter("ignore")  # tracer warnings on diffusers' shape asserts
                    torch.onnx.export(_Body(unet).eval(), self.example_inputs(), str(tmp), input_names=names,
                                      output_names=["sample"], opset_version=17, dynamo=False,
                                      dynamic_axes={name: {0: "batch"} for name in names + ["sample"]})

            _atomic_write(path, export)
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = torch.get_num_threads()  # the same cores eager PyTorch would use
        options.inter_op_num_threads = 1
        options.log_severity_level = 3  # errors only
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        # InferenceSession.run may be called from several threads at once (the studio's requests).
        self.session = onnxruntime.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])

    def run(self, feeds: list[np.ndarray]) -> np.ndarray:
        return self.session.run(None, dict(zip(self.input_names, feeds)))[0]


class OpenVINOUNet(ConvertedUNet):
    """The UNet converted once to OpenVINO IR (fp32, its time embedding an input: _EmbeddedTimeBody) and compiled
    for the CPU to compute in `dtype`: fp32, or bf16 (the plugin's own bf16 kernels, AMX or AVX512-BF16, with norms
    and activations fused); inputs and outputs stay fp32."""

    backend = "openvino"

    def __init__(self, unet: nn.Module, side: int, cache_dir: Path | None = None,
                 max_batch: int | None = OPENVINO_MAX_BATCH, dtype: torch.dtype = torch.float32):
        super().__init__(unet, side, max_batch)
        if dtype not in OPENVINO_PRECISIONS:
            raise ValueError(f"OpenVINO runs the UNet in float32 or bfloat16, not {dtype}")
        if unet.config.class_embed_type is not None:  # such labels go through time_proj as well
            raise ValueError(f"OpenVINOUNet takes class embeddings of no type, not {unet.config.class_embed_type!r}")
        self.precision = dtype
        ov = import_openvino()

        folder = Path(cache_dir or default_cache_dir(self.backend))
        xml = folder / f"{weights_key(unet, self.channels, side)}-embedded-time.xml"
        if not xml.is_file():
            width = self.embed_time(torch.zeros(1)).shape[1]
            shapes = [([-1, self.channels, side, side], ov.Type.f32), ([-1, width], ov.Type.f32)]
            example = list(self.example_inputs())
            example[1] = torch.zeros(1, width)
            if self.conditional:
                shapes.append(([-1], ov.Type.i64))
            with torch.no_grad():
                model = ov.convert_model(_EmbeddedTimeBody(unet).eval(), example_input=tuple(example), input=shapes)
            folder.mkdir(parents=True, exist_ok=True)
            tmp = xml.with_name(f"{xml.stem}.{os.getpid()}.tmp.xml")  # per process, as _atomic_write's
            ov.save_model(model, tmp, compress_to_fp16=False)
            tmp.with_suffix(".bin").replace(xml.with_suffix(".bin"))
            tmp.replace(xml)
        core = ov.Core()
        # The hint is always set: on an AMX CPU the plugin would otherwise pick bf16 by itself.
        self.compiled = core.compile_model(core.read_model(xml), "CPU",
                                           {"INFERENCE_PRECISION_HINT": OPENVINO_PRECISIONS[dtype]})

    def embed_time(self, t: torch.Tensor) -> torch.Tensor:
        """The UNet's sinusoidal embedding of t, in fp32."""
        with torch.no_grad():
            return self.eager.time_proj(t.to(torch.float32)).to(torch.float32)

    def run(self, feeds: list[np.ndarray]) -> np.ndarray:
        feeds = [feeds[0], self.embed_time(torch.from_numpy(feeds[1])).numpy(), *feeds[2:]]
        # One infer request per call: the compiled model's own (`compiled(feeds)`) is shared, and the studio
        # runs requests from several threads at once.
        request = self.compiled.create_infer_request()
        request.infer(feeds)
        return request.get_output_tensor(0).data.copy()


def prepare_unet(unet: nn.Module, backend: str, side: int, cache_dir: Path | None = None,
                 every_batch: bool = False, dtype: torch.dtype = torch.float32) -> nn.Module:
    """The UNet to run for `backend`: converted where that runtime is installed and the UNet is a CPU fp32 one,
    else the eager UNet unchanged. `every_batch`: no routing of large batches to eager (for the benchmarks).
    `dtype`: what OpenVINO computes in (bf16 takes every batch); ONNX Runtime computes in fp32."""
    chosen = installed_backend(backend)  # validates `backend`
    weight = next(unet.parameters())
    if weight.device.type != "cpu" or weight.dtype != torch.float32:
        return unet
    if chosen == "onnxruntime":
        return OnnxRuntimeUNet(unet, side, cache_dir)
    if chosen == "openvino" and unet.config.class_embed_type is None:
        max_batch = None if every_batch or dtype == torch.bfloat16 else OPENVINO_MAX_BATCH
        return OpenVINOUNet(unet, side, cache_dir, max_batch, dtype)
    return unet


def installed_backend(backend: str) -> str:
    """`backend` where its runtime is installed, else "eager" (what prepare_unet falls back to)."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    available = {"onnxruntime": onnxruntime_available, "openvino": openvino_available}.get(backend)
    return backend if available is None or available() else "eager"


def eager_unet(unet: nn.Module) -> nn.Module:
    """The eager UNet behind a prepared one (itself when eager)."""
    return unet.eager if isinstance(unet, ConvertedUNet) else unet


def runtime_name(unet: nn.Module) -> str:
    """What runs a prepared UNet: "onnxruntime", "openvino" or "eager"."""
    return unet.backend if isinstance(unet, ConvertedUNet) else "eager"
