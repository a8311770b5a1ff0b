"""A distribution-matching term for consistency distillation (DMD, Yin et al. 2024, arXiv 2311.18828; DMD2,
arXiv 2405.14867).

CD regresses each point of a teacher trajectory onto the next, so the 1-step sampler inherits the teacher's
averages: where the teacher is unsure between shapes, the sample is a blend of them. DMD instead moves the
1-step samples along the difference of two scores at a noised copy of them: the teacher's (the data) and a
"fake" denoiser's, trained online on the student's own samples. That difference is the gradient of the
reverse KL from the samples' distribution to the teacher's (DMD Eq. 7), which is mode-seeking: it pulls a
blend towards one of the shapes it blends. The fake denoiser starts as a copy of the teacher, so the term
starts at zero and grows as the fake learns where the student's samples differ from the data.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from editing.precond import Denoiser
from editing.schedules import karras_ramp
from training.losses import denoising_loss


@dataclass(frozen=True)
class DistributionMatchingLoss:
    """DMD's generator and fake-denoiser losses. Sigmas are drawn uniformly along the Karras ramp between
    `min_fraction` and `max_fraction` of it (rho 7: sigma 71 down to 0.003, median 2.5), as DMD draws its
    timesteps uniformly between 2% and 98% of the schedule."""

    min_fraction: float = 0.02
    max_fraction: float = 0.98

    def sigmas(self, n: int, fake_score: Denoiser, generator: torch.Generator, device: torch.device) -> torch.Tensor:
        p = fake_score.param
        u = self.min_fraction + (self.max_fraction - self.min_fraction) * torch.rand(n, generator=generator, device=device)
        return karras_ramp(u, p.sigma_min, p.sigma_max, p.rho)

    def generator_loss(
        self, teacher: Denoiser, fake_score: Denoiser, fake: torch.Tensor, labels: torch.Tensor | None,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """0.5 ||g||^2 per sample, whose gradient with respect to `fake` is g (DMD Eq. 7-8):

        g = (D_fake(x_t) - D_teacher(x_t)) / mean|fake - D_teacher(x_t)|, x_t = fake + sigma eps,

        the score difference s_fake - s_real = (D_fake - D_real) / sigma^2 times DMD's weight
        sigma^2 / mean|x - D_real|, which evens the step size across sigmas. Neither denoiser gets a gradient.
        """
        sigma = self.sigmas(fake.shape[0], fake_score, generator, fake.device)
        noise = torch.randn(fake.shape, generator=generator, device=fake.device)
        with torch.no_grad():
            x_t = fake.detach() + sigma.view(-1, 1, 1, 1) * noise
            real_x0 = teacher(x_t, sigma, labels, boundary="edm")
            fake_x0 = fake_score(x_t, sigma, labels, boundary="edm")
            scale = (fake.detach() - real_x0).abs().mean((1, 2, 3), keepdim=True).clamp_min(1e-6)
            g = (fake_x0 - real_x0) / scale
        return 0.5 * (fake - (fake.detach() - g)).pow(2).sum((1, 2, 3)).mean()

    def fake_score_loss(
        self, fake_score: Denoiser, fake: torch.Tensor, labels: torch.Tensor | None, generator: torch.Generator,
    ) -> torch.Tensor:
        """EDM's denoising loss (weight lambda(sigma), Table 1) on the student's detached samples, at the
        sigmas the generator loss reads the fake denoiser at."""
        sigma = self.sigmas(fake.shape[0], fake_score, generator, fake.device)
        return denoising_loss(fake_score, fake.detach(), labels, sigma, generator)
