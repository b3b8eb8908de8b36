"""Model families, shipped weights and their registry (registry.py).

The weights files are found here without torch, so that the torch-free coding engine
(salcodec/runtime) can locate them too.
"""
from __future__ import annotations

import os
from pathlib import Path

DEFAULT_MODEL = "default-v4-cb"  # the id `compress` uses unless told otherwise (default-v4 + channel and checkerboard contexts)
DECODERS = ("mse", "gan", "fast")  # the model's own synthesis first, then second decoders (transforms.py)
ENCODERS = ("default", "fast")  # the model's own analysis first, then second encoders
REFINE_STEPS = 40  # `salcodec compress --refine` without a count (models/refinement.py)
WEIGHTS_DIR = Path(__file__).parent / "weights"
MODEL_PATH_ENV = "SALCODEC_MODEL_PATH"  # extra folders of <id>.pt files, searched before the package
# A model whose entropy parameters alone were retrained (a narrower h_s, or a channel context added;
# train/hyper_synthesis.py) keeps the latents of the model it came from: that model's second
# encoders and decoders serve it too (transforms.py checks that every other weight is the same).
SHARES_TRANSFORMS_OF = {"default-v4-lite": "default-v4", "default-v4-cc": "default-v4", "default-v4-cb": "default-v4"}


def weights_dirs() -> list[Path]:
    extra = [Path(p) for p in os.environ.get(MODEL_PATH_ENV, "").split(os.pathsep) if p]
    return extra + [WEIGHTS_DIR]


def model_file(name: str) -> Path | None:
    """`<name>.pt` in the first weights folder that has it (None for ids that are not names)."""
    if not name.replace("-", "").replace("_", "").replace(".", "").isalnum():
        return None
    for folder in weights_dirs():
        path = folder / f"{name}.pt"
        if path.is_file():
            return path
    return None


def transform_file(base_id: str, kind: str, role: str = "decoder") -> Path | None:
    """The `kind` decoder or encoder file for model `base_id` (models/transforms.py) in the first
    weights folder that has one: `<kind>/<id>.pt` for decoders, `<kind>-encoder/<id>.pt` for encoders;
    failing that, the file of the model whose transforms `base_id` shares."""
    folder_name = kind if role == "decoder" else f"{kind}-{role}"
    for owner in (base_id, SHARES_TRANSFORMS_OF.get(base_id)):
        for folder in weights_dirs() if owner else []:
            path = folder / folder_name / f"{owner}.pt"
            if path.is_file():
                return path
    return None
