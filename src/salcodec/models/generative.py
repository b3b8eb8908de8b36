"""Generative decoding for the default codec (HiFiC-style, Mentzer et al. 2020).

The same `.sgc` file decodes two ways. The MSE decoder is the model's own synthesis transform:
faithful, and blurry at low rates. The GAN decoder is a second synthesis transform of the same
architecture, fine-tuned from the first with a conditional discriminator while the encoder and
entropy model stay frozen, so it reads exactly the latents the file holds and restores texture
the rate could not pay for. It is stored and loaded like every second decoder (transforms.py).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

HIGH_PASS_GAIN = 8.0  # texture residuals are a few percent of the range: bring them to about ±1


class ConditionalPatchDiscriminator(nn.Module):
    """Real or generated, judged per patch (about 46 px wide), given the decoded latents.

    Conditioning on y_hat (as HiFiC does) asks "is this a plausible image *for these latents*",
    so the generator cannot win by drawing texture that the latents contradict. Besides the
    image, the discriminator sees its high-pass residual, amplified: what separates a decoded
    image from a photo is mostly fine texture of small amplitude, and with the plain image alone
    a discriminator was still at chance after hundreds of steps (too slow for CPU budgets).
    """

    def __init__(self, latent_channels: int, width: int = 64, latent_features: int = 12):
        super().__init__()
        self.latent = nn.Sequential(nn.Conv2d(latent_channels, latent_features, 1), nn.LeakyReLU(0.2),
                                    nn.Upsample(scale_factor=16, mode="nearest"))
        widths = [6 + latent_features, width, 2 * width, 4 * width]
        self.blocks = nn.ModuleList(
            nn.Sequential(nn.Conv2d(a, b, 4, 2, 1), nn.LeakyReLU(0.2)) for a, b in zip(widths, widths[1:]))
        self.head = nn.Conv2d(widths[-1], 1, 3, 1, 1)

    def forward(self, x: torch.Tensor, y_hat: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """Patch logits and the intermediate features (for feature matching)."""
        blurred = F.avg_pool2d(F.pad(x, (1, 1, 1, 1), mode="replicate"), 3, stride=1)
        h = torch.cat([x * 2 - 1, HIGH_PASS_GAIN * (x - blurred), self.latent(y_hat)], 1)
        features = []
        for block in self.blocks:
            h = block(h)
            features.append(h)
        return self.head(h), features
