"""The objectives train.py optimizes, one object each: EDM, CT, CD, and the GAN term CD can carry.

An objective's `student_step` computes the student's loss on one micro-batch and returns it with whatever
else it computed that a later step needs (the GAN term's real images and detached 1-step samples, which the
discriminator's step then takes from that return value). The losses themselves are in training.losses and
training.adversarial; the student may be a Denoiser around a DDP-wrapped UNet.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

import torch
from torch import nn

from editing.precond import Denoiser
from training.adversarial import AdversarialLoss
from training.losses import CDLoss, CTLoss, ECTLoss, EDMLoss, ct_discretization, pseudo_huber


@dataclass(frozen=True, eq=False)
class MicroStep:
    """What one micro-batch of the student's objective computed: its loss and, with a GAN term, the real
    images and the (detached) 1-step samples the discriminator's step is to judge."""

    loss: torch.Tensor
    real: torch.Tensor | None = None
    fake: torch.Tensor | None = None
    labels: torch.Tensor | None = None


def backward_steps(net: nn.Module, micro_step: Callable[[], MicroStep], accumulate: int) -> tuple[float, list[MicroStep]]:
    """Backpropagate the mean of `accumulate` micro-batch losses, one micro-batch in memory at a time.

    The gradient of a mean is the mean of the gradients, so the step equals one on the concatenated
    batch. Under DDP (`net` the wrapper) only the last backward all-reduces. Returns the mean loss and
    what each micro-step computed.
    """
    if accumulate < 1:
        raise ValueError(f"accumulate must be at least 1, got {accumulate}")
    steps = []
    for i in range(accumulate):
        last = i == accumulate - 1
        sync = contextlib.nullcontext() if last or not hasattr(net, "no_sync") else net.no_sync()
        with sync:
            step = micro_step()
            (step.loss / accumulate).backward()
        steps.append(replace(step, loss=step.loss.detach()))
    return torch.stack([s.loss for s in steps]).mean().item(), steps  # one host sync per step


def backward_accumulated(net: nn.Module, micro_losses: Callable[[], torch.Tensor], accumulate: int) -> float:
    """backward_steps for a loss alone; returns the mean loss."""
    return backward_steps(net, lambda: MicroStep(micro_losses()), accumulate)[0]


class Objective(Protocol):
    def student_step(self, student: Denoiser, x: torch.Tensor, labels: torch.Tensor | None,
                     generator: torch.Generator, images_seen: int) -> MicroStep: ...


@dataclass(frozen=True)
class EDMObjective:
    """The teacher's denoising loss (EDM, Karras et al. 2022, Eq. 2)."""

    loss: EDMLoss = EDMLoss()

    def student_step(self, student: Denoiser, x: torch.Tensor, labels: torch.Tensor | None,
                     generator: torch.Generator, images_seen: int) -> MicroStep:
        return MicroStep(self.loss(student, x, labels, generator))


@dataclass(frozen=True)
class CTObjective:
    """Consistency training (Song et al. 2023 Alg. 3, iCT's curriculum over `total_images`)."""

    total_images: int
    loss: CTLoss = CTLoss()

    def student_step(self, student: Denoiser, x: torch.Tensor, labels: torch.Tensor | None,
                     generator: torch.Generator, images_seen: int) -> MicroStep:
        return MicroStep(self.loss(student, x, labels, generator, ct_discretization(images_seen, self.total_images)))


@dataclass(frozen=True)
class ECTObjective:
    """Easy consistency tuning (Geng et al. 2024): CT from a teacher's weights, dt / t halved `loss.stages`
    times over `total_images`."""

    total_images: int
    loss: ECTLoss = ECTLoss()

    def student_step(self, student: Denoiser, x: torch.Tensor, labels: torch.Tensor | None,
                     generator: torch.Generator, images_seen: int) -> MicroStep:
        return MicroStep(self.loss(student, x, labels, generator, images_seen, self.total_images))


@dataclass(frozen=True, eq=False)
class GANTerm:
    """LADD-style hinge GAN term on the student's 1-step samples (training.adversarial): heads on the frozen
    teacher's encoder; `disc_net` is `disc` itself or its DDP wrapper."""

    disc: nn.Module
    disc_net: nn.Module
    opt: torch.optim.Optimizer
    teacher: Denoiser
    weight: float
    loss: AdversarialLoss = AdversarialLoss()

    def generator_loss(self, fake: torch.Tensor, labels: torch.Tensor | None, generator: torch.Generator) -> torch.Tensor:
        """-D(fake) with the heads frozen: this term only moves the student."""
        self.disc.requires_grad_(False)
        loss = self.loss.generator_loss(self.disc, self.teacher, fake, labels, generator)
        self.disc.requires_grad_(True)
        return loss

    def discriminator_step(self, steps: Sequence[MicroStep], generator: torch.Generator) -> float:
        """One Adam step of the heads on the real images and samples of the student's micro-steps; its mean loss."""
        self.opt.zero_grad(set_to_none=True)
        judged = iter(steps)

        def micro_loss() -> torch.Tensor:
            step = next(judged)
            return self.loss.discriminator_loss(self.disc_net, self.teacher, step.real, step.fake, step.labels, generator)

        loss = backward_accumulated(self.disc_net, micro_loss, len(steps))
        self.opt.step()
        return loss


@dataclass(frozen=True, eq=False)
class CDObjective:
    """Consistency distillation (Song et al. 2023 Alg. 2) from `teacher` to the EMA `target`, optionally plus
    `gan.weight` times a GAN term on 1-step samples f(sigma_max z) (CTM, Kim et al. 2023; LADD's discriminator)."""

    target: Denoiser
    teacher: Denoiser
    gan: GANTerm | None = None
    loss: CDLoss = CDLoss()

    def student_step(self, student: Denoiser, x: torch.Tensor, labels: torch.Tensor | None,
                     generator: torch.Generator, images_seen: int) -> MicroStep:
        if self.gan is None:
            return MicroStep(self.loss(student, self.target, self.teacher, x, labels, generator))
        # CD's input and the 1-step samples' noise in one evaluation of the student (DDP reduces its gradient once).
        x_hi, sigma_hi, out_lo = self.loss.targets(self.target, self.teacher, x, labels, generator)
        sigma_max = student.param.sigma_max
        x_gen = sigma_max * torch.randn(x.shape, generator=generator, device=x.device)
        sigma_gen = torch.full((x.shape[0],), sigma_max, device=x.device)
        both_labels = torch.cat([labels, labels]) if labels is not None else None
        out_hi, fake = student(torch.cat([x_hi, x_gen]), torch.cat([sigma_hi, sigma_gen]), both_labels).chunk(2)
        loss = pseudo_huber(out_hi, out_lo).mean() + self.gan.weight * self.gan.generator_loss(fake, labels, generator)
        return MicroStep(loss, x, fake.detach(), labels)
