"""Preconditioning: a raw network F becomes a denoiser D(x, sigma) -> x0.

Consistency models (Song et al. 2023, Eq. 7 and Appendix C) use scalings whose boundary condition
holds exactly at sigma_min: f(x, sigma_min) = x. EDM (Karras et al. 2022, Table 1) uses the same
form without the shift, for the diffusion teacher. Scalings are computed in fp32 whatever the
network's dtype, because c_skip -> 1 and c_out -> 0 near sigma_min lose their meaning in bf16.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field, fields
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.attention import SDPBackend, sdpa_kernel

Boundary = Literal["cm", "edm"]


@dataclass(frozen=True)
class Parameterization:
    """How a UNet's input and output relate to sigma; saved as `parameterization.json` beside the UNet."""

    boundary: Boundary = "cm"  # "cm": f(x, sigma_min) = x (consistency model); "edm": diffusion denoiser
    sigma_min: float = 0.002
    sigma_max: float = 80.0
    sigma_data: float = 0.5
    rho: float = 7.0
    time_scale: float = 250.0  # the network's time input is time_scale * ln(sigma) (OpenAI: 1000 * 0.25)
    resolution: int = 64
    pixel_unshuffle: int = 1  # the UNet sees space-to-depth input (H/k x W/k x 3k^2), a cheap wide stem
    class_names: tuple[str, ...] = field(default_factory=tuple)  # empty: unconditional
    # A model of crops of larger images (photos): the studio edits an upload at its own size, on tiles
    # (editing.tiling). False: a model of whole subjects at `resolution` (emoji), fed uploads fitted to it.
    tiled: bool = False

    def __post_init__(self) -> None:
        if self.boundary not in ("cm", "edm"):
            raise ValueError(f"boundary must be 'cm' or 'edm', got {self.boundary!r}")
        if not 0 < self.sigma_min < self.sigma_max:
            raise ValueError(f"need 0 < sigma_min < sigma_max, got {self.sigma_min}, {self.sigma_max}")
        if self.sigma_data <= 0 or self.rho <= 0:
            raise ValueError("sigma_data and rho must be positive")
        if self.pixel_unshuffle < 1 or self.resolution % self.pixel_unshuffle:
            raise ValueError(f"pixel_unshuffle {self.pixel_unshuffle} must divide resolution {self.resolution}")

    def to_dict(self) -> dict:
        out = asdict(self)
        out["class_names"] = list(self.class_names)
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Parameterization:
        known = {f.name for f in fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown parameterization keys: {sorted(unknown)}")
        data = dict(data)
        data["class_names"] = tuple(data.get("class_names", ()))
        return cls(**data)


def scalings(
    sigma: torch.Tensor, param: Parameterization, boundary: Boundary | None = None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(c_skip, c_out, c_in) in fp32: CM Eq. 7 / Appendix C, or EDM Table 1."""
    sigma = sigma.to(torch.float32)
    sd = param.sigma_data
    shift = param.sigma_min if (boundary or param.boundary) == "cm" else 0.0
    c_skip = sd**2 / ((sigma - shift) ** 2 + sd**2)
    c_out = (sigma - shift) * sd / (sigma**2 + sd**2).sqrt()
    c_in = 1.0 / (sigma**2 + sd**2).sqrt()
    return c_skip, c_out, c_in


def time_input(sigma: torch.Tensor, param: Parameterization) -> torch.Tensor:
    """The network's time conditioning t(sigma) = time_scale * ln(sigma) (OpenAI/diffusers convention)."""
    return param.time_scale * torch.log(sigma.to(torch.float32) + 1e-44)


class Denoiser(nn.Module):
    """D(x, sigma) = c_skip x + c_out F(c_in x, t(sigma)): the consistency function f or the EDM denoiser.

    `autocast_dtype` runs the network (not the scalings) in bf16/fp16; `boundary` overrides the
    parameterization's, which lets a CM be trained from an EDM network's weights.
    """

    def __init__(self, unet: nn.Module, param: Parameterization, autocast_dtype: torch.dtype | None = None):
        super().__init__()
        self.unet = unet
        self.param = param
        self.autocast_dtype = autocast_dtype

    @contextlib.contextmanager
    def network_context(self, device_type: str) -> Iterator[None]:
        """The autocast and attention kernel every call of the UNet runs under."""
        with contextlib.ExitStack() as stack:
            if self.autocast_dtype is not None:
                stack.enter_context(torch.autocast(device_type, dtype=self.autocast_dtype))
            if device_type == "cpu":
                # The math SDPA kernel is ~2x faster than the CPU flash kernel on our short (<=64 token) sequences.
                stack.enter_context(sdpa_kernel(SDPBackend.MATH))
            yield

    def network(self, x: torch.Tensor, t: torch.Tensor, class_labels: torch.Tensor | None) -> torch.Tensor:
        """F(x, t) in fp32, with space-to-depth around the UNet when configured."""
        k = self.param.pixel_unshuffle
        if k > 1:
            x = F.pixel_unshuffle(x, k)
        dtype = next(self.unet.parameters()).dtype
        with self.network_context(x.device.type):
            out = self.unet(x.to(dtype), t.to(dtype), class_labels=class_labels).sample
        out = out.to(torch.float32)
        return F.pixel_shuffle(out, k) if k > 1 else out

    def forward(
        self,
        x: torch.Tensor,
        sigma: torch.Tensor | float,
        class_labels: torch.Tensor | None = None,
        boundary: Boundary | None = None,
    ) -> torch.Tensor:
        x = x.to(torch.float32)
        sigma = torch.as_tensor(sigma, dtype=torch.float32, device=x.device)
        if sigma.ndim == 0:
            sigma = sigma.expand(x.shape[0])
        c_skip, c_out, c_in = (c.view(-1, 1, 1, 1) for c in scalings(sigma, self.param, boundary))
        if self.param.class_names and class_labels is None:
            raise ValueError(f"this model is class-conditional: pass class_labels (classes: {self.param.class_names})")
        network_out = self.network(c_in * x, time_input(sigma, self.param), class_labels)
        return c_skip * x + c_out * network_out


def edm_loss_weight(sigma: torch.Tensor, sigma_data: float) -> torch.Tensor:
    """lambda(sigma) = (sigma^2 + sd^2) / (sigma sd)^2, EDM Table 1: unit effective weight on F."""
    return (sigma**2 + sigma_data**2) / (sigma * sigma_data) ** 2


def lognormal_sigmas(
    n: int, p_mean: float, p_std: float, generator: torch.Generator, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """ln(sigma) ~ N(p_mean, p_std^2), EDM's training distribution."""
    z = torch.randn(n, generator=generator, device=device)
    return torch.exp(p_mean + p_std * z)


__all__ = [
    "Boundary",
    "Denoiser",
    "Parameterization",
    "edm_loss_weight",
    "lognormal_sigmas",
    "scalings",
    "time_input",
]
