"""Training objectives: EDM denoising, consistency training (iCT and ECT style) and consistency distillation.

Every loss takes the model(s), a batch (clean images x in [-1, 1]) and one torch.Generator, and returns a
scalar. The Denoiser (editing.precond) supplies the
scalings, so training and sampling share one parameterization.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from editing.precond import Denoiser, edm_loss_weight, lognormal_sigmas
from editing.schedules import karras_sigmas


@dataclass(frozen=True)
class EDMLoss:
    """EDM (Karras et al. 2022) Eq. 2 with lambda(sigma) of Table 1 and lognormal sigma."""

    p_mean: float = -1.2
    p_std: float = 1.2

    def __call__(
        self, model: Denoiser, x: torch.Tensor, labels: torch.Tensor | None, generator: torch.Generator
    ) -> torch.Tensor:
        sigma = lognormal_sigmas(x.shape[0], self.p_mean, self.p_std, generator, x.device)
        return denoising_loss(model, x, labels, sigma, generator)


def denoising_loss(
    model: Denoiser, x: torch.Tensor, labels: torch.Tensor | None, sigma: torch.Tensor, generator: torch.Generator
) -> torch.Tensor:
    """EDM Eq. 2 at the given per-image sigmas: lambda(sigma) ||D(x + sigma n, sigma) - x||^2, Table 1's weight."""
    noise = torch.randn(x.shape, generator=generator, device=x.device)
    x0 = model(x + sigma.view(-1, 1, 1, 1) * noise, sigma, labels, boundary="edm")
    weight = edm_loss_weight(sigma, model.param.sigma_data).view(-1, 1, 1, 1)
    return (weight * (x0 - x) ** 2).mean()


def pseudo_huber(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """sqrt(||a-b||^2 + c^2) - c per sample, c = 0.00054 sqrt(d) (iCT, Song & Dhariwal 2023, Sec. 3.3)."""
    d = a[0].numel()
    c = 0.00054 * math.sqrt(d)
    return ((a - b).flatten(1).pow(2).sum(1) + c * c).sqrt() - c


def ct_discretization(images_seen: int, total_images: int, s0: int = 10, s1: int = 1280) -> int:
    """iCT's curriculum N(k): the number of grid points doubles from s0 to s1 over training (Eq. 6)."""
    k_prime = math.floor(total_images / (math.log2(s1 / s0) + 1))
    return min(s0 * 2 ** math.floor(images_seen / max(k_prime, 1)), s1) + 1


@dataclass(frozen=True)
class CTLoss:
    """Consistency training (Song et al. 2023 Alg. 3, with iCT's improvements): no teacher, no EMA target.

    Adjacent sigmas of an N-point Karras grid share one noise z; the student at the larger sigma is
    pulled to the stop-gradient student at the smaller one with a pseudo-Huber distance, weighted by
    1/(sigma_{i+1} - sigma_i). N grows over training (ct_discretization), shrinking the gap.
    """

    p_mean: float = -1.1
    p_std: float = 2.0

    def __call__(
        self,
        model: Denoiser,
        x: torch.Tensor,
        labels: torch.Tensor | None,
        generator: torch.Generator,
        n: int,
    ) -> torch.Tensor:
        p = model.param
        sigmas = karras_sigmas(n, p.sigma_min, p.sigma_max, p.rho).flip(0).to(x.device, torch.float32)  # ascending
        # Lognormal-weighted choice of the interval [sigma_i, sigma_{i+1}] (iCT Sec. 3.5).
        log = torch.log(sigmas)
        cdf = torch.special.erf((log - self.p_mean) / (math.sqrt(2) * self.p_std))
        probs = (cdf[1:] - cdf[:-1]).clamp_min(1e-12)
        i = torch.multinomial(probs, x.shape[0], replacement=True, generator=generator)
        sigma_lo, sigma_hi = sigmas[i], sigmas[i + 1]
        z = torch.randn(x.shape, generator=generator, device=x.device)
        out_hi = model(x + sigma_hi.view(-1, 1, 1, 1) * z, sigma_hi, labels)
        with torch.no_grad():
            out_lo = model(x + sigma_lo.view(-1, 1, 1, 1) * z, sigma_lo, labels)
        weight = 1.0 / (sigma_hi - sigma_lo)
        return (weight * pseudo_huber(out_hi, out_lo)).mean()


@dataclass(frozen=True)
class CDLoss:
    """Consistency distillation (Song et al. 2023 Alg. 2): one Heun step of the EDM teacher's PF-ODE
    from sigma_{n+1} to sigma_n, then pull f_theta(x_{n+1}) to the EMA target f_theta-(x_n)."""

    n: int = 18

    def __call__(
        self,
        model: Denoiser,
        target: Denoiser,
        teacher: Denoiser,
        x: torch.Tensor,
        labels: torch.Tensor | None,
        generator: torch.Generator,
    ) -> torch.Tensor:
        x_hi, sigma_hi, out_lo = self.targets(target, teacher, x, labels, generator)
        return pseudo_huber(model(x_hi, sigma_hi, labels), out_lo).mean()

    @torch.no_grad()
    def targets(
        self,
        target: Denoiser,
        teacher: Denoiser,
        x: torch.Tensor,
        labels: torch.Tensor | None,
        generator: torch.Generator,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(x_{n+1}, sigma_{n+1}, f_theta-(x_n)): the student's input, its sigma, and what it is pulled to."""
        p = target.param
        sigmas = karras_sigmas(self.n, p.sigma_min, p.sigma_max, p.rho).flip(0).to(x.device, torch.float32)
        i = torch.randint(0, self.n - 1, (x.shape[0],), generator=generator, device=x.device)
        sigma_lo = sigmas[i].view(-1, 1, 1, 1)  # ascending grid: sigma_lo < sigma_hi
        sigma_hi = sigmas[i + 1].view(-1, 1, 1, 1)
        z = torch.randn(x.shape, generator=generator, device=x.device)
        x_hi = x + sigma_hi * z
        # Heun's 2nd-order step of dx/dsigma = (x - D(x, sigma)) / sigma (EDM Alg. 1).
        d_hi = (x_hi - teacher(x_hi, sigma_hi.flatten(), labels, boundary="edm")) / sigma_hi
        x_euler = x_hi + (sigma_lo - sigma_hi) * d_hi
        d_lo = (x_euler - teacher(x_euler, sigma_lo.flatten(), labels, boundary="edm")) / sigma_lo
        x_lo = x_hi + (sigma_lo - sigma_hi) * 0.5 * (d_hi + d_lo)
        return x_hi, sigma_hi.flatten(), target(x_lo, sigma_lo.flatten(), labels)


@dataclass(frozen=True)
class ECTLoss:
    """Easy consistency tuning (Geng et al. 2024, "Consistency models made easy", Sec. 3): CT from a diffusion
    model's weights, with the pair t > r tied by r = t (1 - n(t) / q^a), n(t) = 1 + k sigmoid(-b t).

    t is lognormal; the stage a = floor(stages * images / total) halves dt / t (q = 2) at each stage, so training
    starts as denoising (r clamped to sigma_min, where f is the identity) and tightens towards the consistency
    condition. The student at t is pulled to the stop-gradient student at r (same noise), pseudo-Huber distance,
    weight 1 / (t - r).
    """

    p_mean: float = -1.1
    p_std: float = 2.0
    q: float = 2.0
    k: float = 8.0
    b: float = 1.0
    stages: int = 8

    def r_of(self, t: torch.Tensor, images_seen: int, total_images: int, sigma_min: float) -> torch.Tensor:
        """The smaller sigma of each pair at this point of training (ECT's mapping function)."""
        a = min(math.floor(self.stages * images_seen / max(total_images, 1)), self.stages)
        n = 1 + self.k * torch.sigmoid(-self.b * t)
        return (t * (1 - n / self.q**a)).clamp_min(sigma_min)

    def __call__(
        self, model: Denoiser, x: torch.Tensor, labels: torch.Tensor | None, generator: torch.Generator,
        images_seen: int, total_images: int,
    ) -> torch.Tensor:
        p = model.param
        t = lognormal_sigmas(x.shape[0], self.p_mean, self.p_std, generator, x.device).clamp(p.sigma_min * 1.01, p.sigma_max)
        r = self.r_of(t, images_seen, total_images, p.sigma_min)
        z = torch.randn(x.shape, generator=generator, device=x.device)
        out_t = model(x + t.view(-1, 1, 1, 1) * z, t, labels)
        with torch.no_grad():
            out_r = model(x + r.view(-1, 1, 1, 1) * z, r, labels)
        return (pseudo_huber(out_t, out_r) / (t - r)).mean()
