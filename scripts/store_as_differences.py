"""Rewrite a model's weights file as its differences from a base model (models/registry.py).

    python scripts/store_as_differences.py src/salcodec/models/weights/default-v4-lite.pt default-v4

Tensors equal to the base's are left out and the file names the base and its digest. The model
it loads as, and hence its digest and every file it wrote, stay the same: the script checks that.
"""
from __future__ import annotations

import argparse
from pathlib import Path

import torch

from salcodec.models.registry import differences, half_parameters, load_model, load_weights_file


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("weights", type=Path)
    ap.add_argument("base", help="id of the installed base model")
    args = ap.parse_args()
    _, digest = load_weights_file(args.weights)
    base, base_digest = load_model(args.base)
    blob = torch.load(args.weights, map_location="cpu", weights_only=True)
    if "base_model" in blob:
        raise SystemExit(f"{args.weights} is already stored as differences from '{blob['base_model']}'")
    kept = differences(blob["state_dict"], half_parameters(base))
    blob.update(state_dict=kept, base_model=args.base, base_digest=base_digest.hex())
    tmp = args.weights.with_suffix(".tmp")
    torch.save(blob, tmp)
    try:
        _, new_digest = load_weights_file(tmp)
        if new_digest != digest:
            raise SystemExit(f"the rewritten file loads as other weights ({new_digest.hex()} != {digest.hex()}); kept the original")
        size = args.weights.stat().st_size
        tmp.replace(args.weights)
    finally:
        tmp.unlink(missing_ok=True)
    print(f"{args.weights}: {len(kept)} tensors differ from the base's, "
          f"{size / 1e6:.1f} -> {args.weights.stat().st_size / 1e6:.1f} MB, digest {digest.hex()} unchanged")


if __name__ == "__main__":
    main()
