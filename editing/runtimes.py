"""CPU backends for the UNet: eager PyTorch, or the same network converted once to OpenVINO.

The converted network (OpenVINO IR) is cached on disk under a key of the weights and the input shape, so the
conversion is paid once; later loads read the IR. Where openvino is not installed the eager UNet is kept. Speed and
agreement with eager are measured by `python -m benchmarks --sections speed`.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import sys
from pathlib import Path
from types import SimpleNamespace

import torch
from torch import nn

BACKENDS = ("eager", "openvino")
# Above this batch eager PyTorch (oneDNN) out-ran the converted network on both shipped models, so "openvino"
# routes larger batches (the engine's tile batches) to the eager UNet; see `benchmarks --sections speed`.
OPENVINO_MAX_BATCH = 8


def openvino_available() -> bool:
    return importlib.util.find_spec("openvino") is not None


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


def default_cache_dir() -> Path:
    """$XDG_CACHE_HOME (else ~/.cache) / consistency-studio / openvino."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "consistency-studio" / "openvino"


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


class OpenVINOUNet(nn.Module):
    """Stands in for a diffusers UNet2DModel (call, `.config`, `.sample`) and runs it through OpenVINO in fp32,
    up to `max_batch` images a call (larger batches, and other input sizes, run the eager UNet).

    The eager UNet stays as `.eager` (its parameters give dtype and device; diffusers' pipeline and training
    use it directly)."""

    def __init__(self, unet: nn.Module, side: int, cache_dir: Path | None = None,
                 max_batch: int | None = OPENVINO_MAX_BATCH):
        super().__init__()
        ov = import_openvino()

        self.eager = unet
        self.config = unet.config
        self.side = side
        self.max_batch = max_batch  # None: every batch through OpenVINO
        self.conditional = bool(unet.config.num_class_embeds)
        c = int(unet.config.in_channels)
        folder = Path(cache_dir or default_cache_dir())
        xml = folder / f"{weights_key(unet, c, side)}.xml"
        if not xml.is_file():
            x = torch.zeros(1, c, side, side)
            t = torch.zeros(1)
            example: tuple[torch.Tensor, ...] = (x, t)
            shapes = [([-1, c, side, side], ov.Type.f32), ([-1], ov.Type.f32)]
            if self.conditional:
                example += (torch.zeros(1, dtype=torch.long),)
                shapes.append(([-1], ov.Type.i64))
            with torch.no_grad():
                model = ov.convert_model(_Body(unet).eval(), example_input=example, input=shapes)
            folder.mkdir(parents=True, exist_ok=True)
            tmp = xml.with_suffix(".tmp.xml")
            ov.save_model(model, tmp, compress_to_fp16=False)
            tmp.with_suffix(".bin").replace(xml.with_suffix(".bin"))
            tmp.replace(xml)
        core = ov.Core()
        self.compiled = core.compile_model(core.read_model(xml), "CPU", {"INFERENCE_PRECISION_HINT": "f32"})

    def forward(self, x: torch.Tensor, t: torch.Tensor, class_labels: torch.Tensor | None = None,
                return_dict: bool = True) -> SimpleNamespace | tuple[torch.Tensor]:
        too_large = self.max_batch is not None and x.shape[0] > self.max_batch
        if too_large or tuple(x.shape[-2:]) != (self.side, self.side):  # the IR is built for one tile size
            return self.eager(x, t, class_labels=class_labels, return_dict=return_dict)
        n = x.shape[0]
        t = t.to(torch.float32).expand(n) if t.ndim == 0 else t.to(torch.float32)
        feeds = [x.detach().to("cpu", torch.float32).contiguous().numpy(), t.to("cpu").contiguous().numpy()]
        if self.conditional:
            if class_labels is None:
                raise ValueError("this UNet is class-conditional: pass class_labels")
            feeds.append(class_labels.to("cpu", torch.long).expand(n).contiguous().numpy())
        # One infer request per call: the compiled model's own (`compiled(feeds)`) is shared, and the studio
        # runs requests from several threads at once.
        request = self.compiled.create_infer_request()
        request.infer(feeds)
        sample = torch.from_numpy(request.get_output_tensor(0).data.copy()).to(x.device)
        return SimpleNamespace(sample=sample) if return_dict else (sample,)


def prepare_unet(unet: nn.Module, backend: str, side: int, cache_dir: Path | None = None,
                 max_batch: int | None = OPENVINO_MAX_BATCH) -> nn.Module:
    """The UNet to run for `backend`: OpenVINO where asked for, installed and the UNet is a CPU fp32 one, else the
    eager UNet unchanged."""
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
    weight = next(unet.parameters())
    if backend == "openvino" and openvino_available() and weight.device.type == "cpu" and weight.dtype == torch.float32:
        return OpenVINOUNet(unet, side, cache_dir, max_batch)
    return unet


def eager_unet(unet: nn.Module) -> nn.Module:
    """The eager UNet behind a prepared one (itself when eager)."""
    return unet.eager if isinstance(unet, OpenVINOUNet) else unet
