"""Run a convolutional transform tile by tile, with a halo, so memory stays bounded on big images.

Each tile is processed together with a border of its neighbours (the halo) wider than the
transform's receptive field, and only the tile's own part of the output is kept. The stitched
result equals the untiled one up to floating-point rounding (exactly, for integer arithmetic),
so tile borders leave no seams. It takes torch tensors (the torch engine) or numpy arrays (the
onnx engine, which never imports torch) alike.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

Array = Any  # a torch.Tensor or a numpy.ndarray


def _empty(like: Array, shape: tuple[int, ...]) -> Array:
    return like.new_empty(shape) if hasattr(like, "new_empty") else np.empty(shape, like.dtype)


def tiled(fn: Callable[..., tuple[Array, ...]], inputs: Sequence[Array], tile: int, halo: int,
          scale: float) -> tuple[Array, ...]:
    """Apply `fn` to same-sized 1×C×H×W `inputs` in tiles of `tile`×`tile` input pixels with a `halo`.

    `fn` gets the crops of every input and returns tensors whose spatial size is the input's
    times `scale` (1/16 for an analysis transform, 16 for a synthesis transform), of any dtype;
    `tile` and `halo` must map to whole output pixels. Only tile-sized pieces are ever converted
    or transformed, so inputs can stay compact (uint8 pixels) and outputs can be compact too.
    """
    h, w = inputs[0].shape[-2:]
    outputs: list[Array] | None = None
    for y0 in range(0, h, tile):
        for x0 in range(0, w, tile):
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            ha0, wa0 = max(0, y0 - halo), max(0, x0 - halo)
            ha1, wa1 = min(h, y1 + halo), min(w, x1 + halo)
            parts = fn(*(t[..., ha0:ha1, wa0:wa1] for t in inputs))
            if outputs is None:
                outputs = [_empty(p, tuple(p.shape[:2]) + (round(h * scale), round(w * scale))) for p in parts]
            for out, part in zip(outputs, parts):
                oy, ox = round((y0 - ha0) * scale), round((x0 - wa0) * scale)
                th, tw = round((y1 - y0) * scale), round((x1 - x0) * scale)
                out[..., round(y0 * scale):round(y0 * scale) + th, round(x0 * scale):round(x0 * scale) + tw] = \
                    part[..., oy:oy + th, ox:ox + tw]
    assert outputs is not None
    return tuple(outputs)
