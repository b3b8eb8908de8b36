"""Where an onnx-engine decompress spends its time, stage by stage, on one image.

    python benchmarks/decode_stages.py [--image ../shared/data/kodak/kodim01.png] [--model ID] [--decoder mse|fast]

Compresses the image once (quality 50, uniform map), then times each stage of
`runtime.coder.decode` on its own (median of --runs): entropy decoding of z, the exact
hyper-synthesis, the scale indexes, entropy decoding of y, turning the coder's list of symbols
into an array, the synthesis; and the whole `api.decompress` for comparison.
"""
from __future__ import annotations

import argparse

import numpy as np
from PIL import Image
from timing import median_seconds

from salcodec import api
from salcodec.codec import bitstream
from salcodec.codec.encoded import padded_size
from salcodec.models import DEFAULT_MODEL
from salcodec.runtime import coder


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--image", default="../shared/data/kodak/kodim01.png")
    ap.add_argument("--model", default=DEFAULT_MODEL)
    ap.add_argument("--decoder", default="mse", choices=["mse", "fast"])
    ap.add_argument("--runs", type=int, default=15)
    args = ap.parse_args()
    image = np.asarray(Image.open(args.image).convert("RGB"))
    encoder = "fast" if args.decoder == "fast" else "default"
    data = api.compress(image, 50, "none", model=args.model, encoder=encoder, engine="onnx")
    api.decompress(data, args.decoder, engine="onnx")  # loads the graphs and tables

    container = bitstream.unpack(data)
    tables, synthesis = coder._tables(args.model), coder._synthesis(args.model, args.decoder)
    _, decoder_cls = coder._rans()
    y_string, z_string = container.streams
    padded = padded_size(container.header.height, container.header.width, tables.stride)
    z_shape = (padded[0] // tables.stride, padded[1] // tables.stride)
    z_indexes = tables.channel_indexes(z_shape).tolist()
    z_stream = bitstream.pad_stream(z_string, len(z_indexes))
    z_symbols = decoder_cls().decode_with_indexes(z_stream, z_indexes, *tables.eb_lists)
    z_hat = coder.symbol_array(z_symbols).reshape(tables.N, *z_shape) + tables.medians[:, None, None]
    scales, means = tables.scales_and_means(z_hat)
    y_indexes = tables.scale_indexes(scales).reshape(-1).tolist()
    y_stream = bitstream.pad_stream(y_string, len(y_indexes))
    y_symbols = decoder_cls().decode_with_indexes(y_stream, y_indexes, *tables.gc_lists)
    y_hat = (coder.symbol_array(y_symbols).reshape(means.shape) + means)[None]
    q0 = np.array([container.header.q0 / 255], np.float32)

    stages = {
        "entropy decoding of z": lambda: decoder_cls().decode_with_indexes(z_stream, z_indexes, *tables.eb_lists),
        "hyper-synthesis (exact, numpy)": lambda: tables.scales_and_means(z_hat),
        "scale indexes": lambda: tables.scale_indexes(scales),
        "entropy decoding of y": lambda: decoder_cls().decode_with_indexes(y_stream, y_indexes, *tables.gc_lists),
        "symbol list to array": lambda: coder.symbol_array(y_symbols),
        f"synthesis ({args.decoder}, onnx)": lambda: synthesis.run(None, {"y_hat": y_hat, "q0": q0}),
    }
    print(f"# {args.image}, {args.model}, {args.decoder} decoder, quality 50; median of {args.runs} (ms)")
    print("| stage | ms |")
    print("|---|---|")
    timed = {name: 1000 * median_seconds(fn, args.runs) for name, fn in stages.items()}
    whole = 1000 * median_seconds(lambda: api.decompress(data, args.decoder, engine="onnx"), args.runs)
    for name, ms in timed.items():
        print(f"| {name} | {ms:.1f} |")
    print(f"| the rest (unpacking, index lists, pixels) | {whole - sum(timed.values()):.1f} |")
    print(f"| **api.decompress** | {whole:.1f} |")


if __name__ == "__main__":
    main()
