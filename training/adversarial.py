"""An adversarial term for consistency distillation, with the frozen EDM teacher as the discriminator's backbone.

CD alone leaves 1-step samples soft and speckled: its pseudo-Huber regression to a bootstrapped target
averages what it cannot resolve. A GAN term on the student's 1-step samples sharpens them, as CTM (Kim et
al. 2023) added to consistency distillation. The discriminator follows LADD (Sauer et al. 2024, arXiv
2403.12015): real images and 1-step samples are re-noised to a random sigma and passed through the teacher's
encoder (its down blocks and mid block, frozen); small trainable heads on those feature maps give the
logits, with a projection on the style label. The teacher already knows this data at every noise level,
so its features separate real from fake from the first steps, and no pretrained classifier is needed.
Hinge losses (Lim & Ye 2017), as in ADD and LADD. The generator's samples are the student's 1-step samples
f(sigma_max z); starting some from lower sigmas, as ADD does, was tried and not shipped (model card).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from editing.precond import Denoiser, lognormal_sigmas


class _EncoderDone(Exception):
    """Raised by the hook on the mid block: the decoder's output is not needed."""


def teacher_features(
    teacher: Denoiser, x: torch.Tensor, sigma: torch.Tensor, labels: torch.Tensor | None
) -> list[torch.Tensor]:
    """The teacher UNet's encoder features at noise level sigma, fp32, finest first.

    Taken by forward hooks during the teacher's own evaluation D(x, sigma) (EDM scalings), which stops after the
    mid block: the first down block's last layer output (full resolution), every down block's output, the mid
    block's output.
    """
    unet = teacher.unet
    first = unet.down_blocks[0]
    layers = getattr(first, "attentions", None) or first.resnets  # what the block's first residual comes from
    features: list[torch.Tensor] = []

    def keep(module: nn.Module, inputs: object, output: torch.Tensor | tuple) -> None:
        features.append((output[0] if isinstance(output, tuple) else output).to(torch.float32))

    def keep_and_stop(module: nn.Module, inputs: object, output: torch.Tensor) -> None:
        keep(module, inputs, output)
        raise _EncoderDone

    hooks = [m.register_forward_hook(keep) for m in (layers[-1], *unet.down_blocks)]
    hooks.append(unet.mid_block.register_forward_hook(keep_and_stop))
    try:
        teacher(x, sigma, labels, boundary="edm")
    except _EncoderDone:
        pass
    finally:
        for hook in hooks:
            hook.remove()
    return features


class FeatureHead(nn.Module):
    """Logits from one feature map: a conv block, a per-location logit averaged over the map, plus the
    projection of the pooled features on a learned embedding of the style (Miyato & Koyama 2018)."""

    def __init__(self, channels: int, num_classes: int):
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=1),
            nn.GroupNorm(math.gcd(32, channels), channels),
            nn.SiLU(),
            nn.Conv2d(channels, channels, 1),
        )
        self.logit = nn.Conv2d(channels, 1, 1)
        self.embed = nn.Embedding(num_classes, channels) if num_classes else None

    def forward(self, feature: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        h = self.body(feature)
        out = self.logit(h).flatten(1).mean(1)
        if self.embed is not None:
            out = out + (h.mean((2, 3)) * self.embed(labels)).sum(1) / math.sqrt(h.shape[1])
        return out


class Discriminator(nn.Module):
    """The trainable part of the discriminator: one FeatureHead per teacher feature map. The teacher
    itself is passed in at each call, so it is neither trained nor saved with the heads."""

    def __init__(self, channels: Sequence[int], num_classes: int):
        super().__init__()
        self.heads = nn.ModuleList(FeatureHead(c, num_classes) for c in channels)

    @classmethod
    def for_teacher(cls, teacher: Denoiser) -> Discriminator:
        """Heads sized to the teacher's feature maps (one probe evaluation at sigma 1)."""
        res = teacher.param.resolution
        device = next(teacher.unet.parameters()).device
        labels = torch.zeros(1, dtype=torch.long, device=device) if teacher.param.class_names else None
        with torch.no_grad():
            probe = teacher_features(teacher, torch.zeros(1, 3, res, res, device=device),
                                     torch.ones(1, device=device), labels)
        return cls([f.shape[1] for f in probe], len(teacher.param.class_names)).to(device)

    def forward(self, features: Sequence[torch.Tensor], labels: torch.Tensor | None) -> torch.Tensor:
        return sum(head(f, labels) for head, f in zip(self.heads, features, strict=True))


@dataclass(frozen=True)
class AdversarialLoss:
    """Hinge losses for the student's 1-step samples against real images, both seen by the discriminator
    at a lognormal sigma (median exp(p_mean) = 0.37 by default: coarse shapes and fine detail both still
    visible to the teacher's features)."""

    p_mean: float = -1.0
    p_std: float = 1.0

    def logits(
        self, disc: nn.Module, teacher: Denoiser, x: torch.Tensor, labels: torch.Tensor | None,
        generator: torch.Generator,
    ) -> torch.Tensor:
        sigma = lognormal_sigmas(x.shape[0], self.p_mean, self.p_std, generator, x.device)
        noise = torch.randn(x.shape, generator=generator, device=x.device)
        return disc(teacher_features(teacher, x + sigma.view(-1, 1, 1, 1) * noise, sigma, labels), labels)

    def generator_loss(
        self, disc: nn.Module, teacher: Denoiser, fake: torch.Tensor, labels: torch.Tensor | None,
        generator: torch.Generator,
    ) -> torch.Tensor:
        """-D(fake): its gradient reaches the student through the frozen teacher."""
        return -self.logits(disc, teacher, fake, labels, generator).mean()

    def discriminator_loss(
        self, disc: nn.Module, teacher: Denoiser, real: torch.Tensor, fake: torch.Tensor,
        labels: torch.Tensor | None, generator: torch.Generator,
    ) -> torch.Tensor:
        """relu(1 - D(real)) + relu(1 + D(fake)), real and fake through the discriminator in one batch."""
        both = torch.cat([real, fake.detach()])
        both_labels = torch.cat([labels, labels]) if labels is not None else None
        logits = self.logits(disc, teacher, both, both_labels, generator)
        d_real, d_fake = logits.chunk(2)
        return F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
