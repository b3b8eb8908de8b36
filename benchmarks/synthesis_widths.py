"""The onnx engine's synthesis time by hidden widths: why the fast decoder tapers.

    python benchmarks/synthesis_widths.py [--widths 128,128,128 64,64,64 96,64,32 ...] [--runs 12]

For each width triple (the hidden layers at 1/8, 1/4 and 1/2 of the image's resolution) a
`SynthesisTransform` with random weights is exported as the engine exports decoders
(runtime/export.export_synthesis_graph) and run by ONNX Runtime on the latents of a 768×512
image. Speed does not depend on the weights' values, so this ranks architectures before any
training. Prints the median time, the parameters and the multiply-adds.
"""
from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from timing import median_seconds

from salcodec.models.hyperprior import SynthesisTransform
from salcodec.runtime.export import export_synthesis_graph

M, LATENT_SHAPE = 192, (32, 48)  # a Kodak image's y


def multiply_adds(widths: tuple[int, int, int]) -> float:
    """Per image: each 5×5 stride-2 transposed convolution spends 25/4 taps per output pixel and
    channel pair; each inverse GDN one 1×1 convolution."""
    pixels = [LATENT_SHAPE[0] * LATENT_SHAPE[1] * 4**i for i in range(1, 5)]
    channels = (M, *widths, 3)
    deconvs = sum(p * c_in * c_out * 25 / 4 for p, c_in, c_out in zip(pixels, channels, channels[1:]))
    return deconvs + sum(p * c * c for p, c in zip(pixels, widths))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--widths", nargs="+", default=["128,128,128", "64,64,64", "96,64,32", "64,64,32", "48,48,48"])
    ap.add_argument("--runs", type=int, default=12)
    args = ap.parse_args()
    torch.manual_seed(0)
    feed = {"y_hat": np.round(np.random.default_rng(0).normal(0, 2, (1, M, *LATENT_SHAPE))).astype(np.float32),
            "q0": np.array([0.5], np.float32)}
    options = ort.SessionOptions()
    options.log_severity_level = 3
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as the engine runs it
    print(f"# onnx synthesis of a {16 * LATENT_SHAPE[1]}x{16 * LATENT_SHAPE[0]} image, random weights; "
          f"median of {args.runs} (ms)")
    print("| hidden widths | ms | parameters | multiply-adds (G) |\n|---|---|---|---|")
    with tempfile.TemporaryDirectory() as tmp:
        for spec in args.widths:
            widths = tuple(int(w) for w in spec.split(","))
            transform = SynthesisTransform(M, widths).eval()
            path = Path(tmp) / f"{spec}.onnx"
            export_synthesis_graph(transform, path)
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            ms = 1000 * median_seconds(lambda session=session: session.run(None, feed), args.runs)
            params = sum(p.numel() for p in transform.parameters())
            print(f"| {spec} | {ms:.1f} | {params:,} | {multiply_adds(widths) / 1e9:.1f} |")


if __name__ == "__main__":
    main()
