"""A SAM-style saliency model sized for CPUs (after Cornia et al., "Predicting Human Eye Fixations
via an LSTM-based Saliency Attentive Model").

Read top to bottom: a small convolutional encoder (stride 8, dilated at the end to widen the
receptive field without losing resolution), an attentive ConvLSTM that refines the features over
a few steps by re-weighting them with a spatial attention map, learned Gaussian priors for the
centre bias, and a readout to one map. It works at a fixed 240×320 input; the map is resized to
the image. Trained from scratch on OSIE and NUS Scene (no pretrained backbone is available here).
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

INPUT_SIZE = (240, 320)  # H, W
WEIGHTS_DIR = Path(__file__).parent / "weights"
MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)


def _block(cin: int, cout: int, stride: int = 1, dilation: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(cin, cout, 3, stride, padding=dilation, dilation=dilation),
                         nn.BatchNorm2d(cout), nn.ReLU(inplace=True))


class AttentiveConvLSTM(nn.Module):
    """ConvLSTM whose input at each step is the features re-weighted by a spatial softmax attention."""

    def __init__(self, channels: int, hidden: int, steps: int):
        super().__init__()
        self.steps, self.hidden = steps, hidden
        self.att_x = nn.Conv2d(channels, hidden, 3, padding=1)
        self.att_h = nn.Conv2d(hidden, hidden, 3, padding=1, bias=False)
        self.att_v = nn.Conv2d(hidden, 1, 1, bias=False)
        self.gates = nn.Conv2d(channels + hidden, 4 * hidden, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, _, h, w = x.shape
        hid = x.new_zeros(b, self.hidden, h, w)
        cell = x.new_zeros(b, self.hidden, h, w)
        ax = self.att_x(x)
        for _ in range(self.steps):
            logits = self.att_v(torch.tanh(ax + self.att_h(hid))).flatten(1)
            attention = torch.softmax(logits, dim=1).view(b, 1, h, w) * (h * w)
            i, f, o, g = self.gates(torch.cat([x * attention, hid], 1)).chunk(4, 1)
            cell = torch.sigmoid(f) * cell + torch.sigmoid(i) * torch.tanh(g)
            hid = torch.sigmoid(o) * torch.tanh(cell)
        return hid


class GaussianPriors(nn.Module):
    """K learned 2-D Gaussians over normalised image coordinates (the centre bias, learned)."""

    def __init__(self, count: int = 8):
        super().__init__()
        self.mu = nn.Parameter(torch.rand(count, 2) * 0.6 + 0.2)
        self.log_sigma = nn.Parameter(torch.full((count, 2), math.log(0.25)) + 0.3 * torch.randn(count, 2))

    def forward(self, b: int, h: int, w: int) -> torch.Tensor:
        yy = torch.linspace(0, 1, h, device=self.mu.device).view(1, h, 1)
        xx = torch.linspace(0, 1, w, device=self.mu.device).view(1, 1, w)
        sigma = self.log_sigma.exp().clamp_min(0.02)
        g = torch.exp(-((yy - self.mu[:, 0, None, None]) ** 2) / (2 * sigma[:, 0, None, None] ** 2)
                      - ((xx - self.mu[:, 1, None, None]) ** 2) / (2 * sigma[:, 1, None, None] ** 2))
        g = g / g.flatten(1).amax(1).view(-1, 1, 1)
        return g.unsqueeze(0).expand(b, -1, -1, -1)


class SaliencyNet(nn.Module):
    def __init__(self, width: int = 24, hidden: int = 32, steps: int = 3, priors: int = 8):
        super().__init__()
        c1, c2, c3 = width, width * 2, width * 3
        self.encoder = nn.Sequential(
            _block(3, c1, 2), _block(c1, c1),
            _block(c1, c2, 2), _block(c2, c2),
            _block(c2, c3, 2), _block(c3, c3),
            _block(c3, c3, dilation=2), _block(c3, c3, dilation=4),
        )
        self.lstm = AttentiveConvLSTM(c3, hidden, steps)
        self.priors = GaussianPriors(priors)
        self.readout = nn.ModuleList([_block(hidden + priors, hidden, dilation=4), nn.Conv2d(hidden + priors, 1, 1)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """x: B×3×240×320 in [0, 1] → B×1×240×320 non-negative maps that sum to 1 (a fixation density)."""
        feats = self.lstm(self.encoder((x - MEAN.to(x)) / STD.to(x)))
        b, _, h, w = feats.shape
        priors = self.priors(b, h, w)
        out = self.readout[0](torch.cat([feats, priors], 1))
        logits = self.readout[1](torch.cat([out, priors], 1))
        logits = F.interpolate(logits, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return torch.softmax(logits.flatten(1), dim=1).view_as(logits)


def prepare(image: np.ndarray) -> torch.Tensor:
    """H×W×3 uint8 to the 1×3×240×320 network input (resized with antialiasing)."""
    x = torch.from_numpy(np.array(image, dtype=np.float32)).permute(2, 0, 1)[None] / 255
    return F.interpolate(x, size=INPUT_SIZE, mode="bilinear", antialias=True, align_corners=False)


class LearnedPredictor:
    """The shipped model behind the predict(image) interface; loads once."""

    def __init__(self, path: Path):
        blob = torch.load(path, map_location="cpu", weights_only=True)
        self.net = SaliencyNet(**blob["hparams"])
        self.net.load_state_dict({k: v.float() if v.is_floating_point() else v for k, v in blob["state_dict"].items()})
        self.net.eval()

    @torch.inference_mode()
    def __call__(self, image: np.ndarray) -> np.ndarray:
        density = self.net(prepare(image))
        sal = F.interpolate(density, size=image.shape[:2], mode="bilinear", align_corners=False)[0, 0]
        sal = sal - sal.min()
        return (sal / sal.max().clamp_min(1e-12)).numpy().astype(np.float32)
