"""Run a convolutional transform tile by tile, with a halo, so memory stays bounded on big images.

Each tile is processed together with a border of its neighbours (the halo) wider than the
transform's receptive field, and only the tile's own part of the output is kept. The stitched
result equals the untiled one up to floating-point rounding, so tile borders leave no seams.
"""
from __future__ import annotations

from collections.abc import Callable

import torch


def tiled(fn: Callable[[torch.Tensor], tuple[torch.Tensor, ...]], x: torch.Tensor, tile: int, halo: int,
          scale: float) -> tuple[torch.Tensor, ...]:
    """Apply `fn` to `x` (1×C×H×W) in tiles of `tile`×`tile` input pixels with a `halo`.

    `fn` returns tensors whose spatial size is the input's times `scale` (1/16 for an analysis
    transform, 16 for a synthesis transform); `tile` and `halo` must map to whole output pixels.
    """
    h, w = x.shape[-2:]
    outputs: list[torch.Tensor] | None = None
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            ha0, wa0 = max(0, y0 - halo), max(0, x0 - halo)
            ha1, wa1 = min(h, y1 + halo), min(w, x1 + halo)
            parts = fn(x[..., ha0:ha1, wa0:wa1])
            if outputs is None:
                outputs = [p.new_empty(p.shape[:2] + (round(h * scale), round(w * scale))) for p in parts]
            for out, part in zip(outputs, parts):
                oy, ox = round((y0 - ha0) * scale), round((x0 - wa0) * scale)
                th, tw = round((y1 - y0) * scale), round((x1 - x0) * scale)
                out[..., round(y0 * scale):round(y0 * scale) + th, round(x0 * scale):round(x0 * scale) + tw] = \
                    part[..., oy:oy + th, ox:ox + tw]
    assert outputs is not None
    return tuple(outputs)
