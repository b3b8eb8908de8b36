"""FID and KID of decoded images, on patches, with Inception weights the user supplies.

Both compare the distribution of Inception-v3 pool features of the decoded images with that of
the originals: FID (Heusel et al. 2017) fits a Gaussian to each, KID (Bińkowski et al. 2018) is
the unbiased squared MMD under the kernel k(a, b) = (a·b / d + 1)³. Salcodec downloads nothing,
so the network comes from pytorch-fid (`pytorch_fid.inception`) and its weights from the user:
the file pytorch-fid itself uses, `pt_inception-2015-12-05-6726825d.pth`, found at
--inception-weights, $SALCODEC_INCEPTION_WEIGHTS or torch's hub cache, where pytorch-fid puts it.

A test set of 24 images gives too few samples for 2048-dimensional statistics, so, as in HiFiC
(Mentzer et al. 2020), each image is cut into 256² patches, once on the grid and once shifted by
half a patch (8 patches from a 768×512 image). FID stays biased upwards at a few hundred
patches; KID is unbiased and is the number to compare across sample sizes.
"""
from __future__ import annotations

import os
from pathlib import Path
from unittest import mock

import numpy as np

from ..errors import SalcodecError

WEIGHTS_FILE = "pt_inception-2015-12-05-6726825d.pth"  # pytorch-fid's name for its weights
WEIGHTS_ENV = "SALCODEC_INCEPTION_WEIGHTS"
PATCH = 256
KID_SUBSETS, KID_SUBSET_SIZE = 100, 1000


def find_weights(explicit: str | Path | None = None) -> Path | None:
    """The Inception weights to use: the given path (which must exist), else $SALCODEC_INCEPTION_WEIGHTS,
    else pytorch-fid's file in torch's hub cache; None when there are none."""
    if explicit is not None:
        path = Path(explicit)
        if not path.is_file():
            raise SalcodecError(f"Inception weights not found: {path}")
        return path
    if os.environ.get(WEIGHTS_ENV):
        return find_weights(os.environ[WEIGHTS_ENV])
    import torch
    cached = Path(torch.hub.get_dir()) / "checkpoints" / WEIGHTS_FILE
    return cached if cached.is_file() else None


def unavailable_reason() -> str:
    return (f"FID/KID unavailable: no Inception weights (give --inception-weights PATH to pytorch-fid's {WEIGHTS_FILE}, "
            f"or set ${WEIGHTS_ENV}; nothing is downloaded)")


class InceptionFeatures:
    """pytorch-fid's Inception-v3 up to its 2048-d pool features, with weights from a local file."""

    def __init__(self, weights: Path):
        import torch
        from pytorch_fid import inception
        try:
            state = torch.load(weights, map_location="cpu", weights_only=True)
        except Exception as exc:  # a torn or foreign file: torch raises many kinds
            raise SalcodecError(f"cannot read Inception weights {weights}: {str(exc).splitlines()[0]}") from None
        # pytorch-fid fetches its weights by URL; hand it the user's file instead, so nothing downloads
        with mock.patch.object(inception, "load_state_dict_from_url", lambda *args, **kwargs: state):
            try:
                self.net = inception.InceptionV3([inception.InceptionV3.BLOCK_INDEX_BY_DIM[2048]]).eval()
            except (RuntimeError, TypeError, AttributeError) as exc:
                raise SalcodecError(f"{weights} is not pytorch-fid Inception weights: {str(exc).splitlines()[0]}") from None

    def __call__(self, patches: np.ndarray, batch: int = 16) -> np.ndarray:
        """N×P×P×3 uint8 patches to N×2048 float64 features."""
        import torch
        out = []
        with torch.inference_mode():
            for start in range(0, len(patches), batch):
                x = torch.from_numpy(patches[start:start + batch]).permute(0, 3, 1, 2).float() / 255
                out.append(self.net(x)[0].flatten(1).double().numpy())
        return np.concatenate(out) if out else np.zeros((0, 2048))


def patches(image: np.ndarray, size: int = PATCH) -> np.ndarray:
    """The image's size² patches on the grid and on the grid shifted by size/2 (HiFiC's scheme);
    an image smaller than that gives squares of its shorter side (Inception resizes all to 299²)."""
    h, w = image.shape[:2]
    size = min(size, h, w)
    found = [image[y:y + size, x:x + size]
             for offset in (0, size // 2)
             for y in range(offset, h - size + 1, size)
             for x in range(offset, w - size + 1, size)]
    return np.stack(found) if found else np.zeros((0, size, size, 3), np.uint8)


def fid(features_a: np.ndarray, features_b: np.ndarray) -> float:
    """Fréchet distance between Gaussians fitted to two feature sets:
    |μa − μb|² + tr Σa + tr Σb − 2 tr (Σa Σb)^½.

    With Σ = AᵀA for the centred features A/√(n−1), the eigenvalues of Σa Σb are the squared
    singular values of A Bᵀ, so the last trace is the nuclear norm of Ra Rbᵀ (R from QR, at most
    2048² whatever the sample size). This is exact, and takes milliseconds at a few hundred
    patches; the usual matrix square root of the 2048² product takes seconds per setting.
    """
    if min(len(features_a), len(features_b)) < 2:
        raise SalcodecError("FID needs at least 2 patches per set")
    a, b = ((f - f.mean(0)) / np.sqrt(len(f) - 1) for f in (features_a, features_b))
    r_a, r_b = np.linalg.qr(a, mode="r"), np.linalg.qr(b, mode="r")
    cross = np.linalg.svd(r_a @ r_b.T, compute_uv=False).sum()
    mean_gap = features_a.mean(0) - features_b.mean(0)
    return float(mean_gap @ mean_gap + (a * a).sum() + (b * b).sum() - 2 * cross)


def kid(features_a: np.ndarray, features_b: np.ndarray, subsets: int = KID_SUBSETS,
        subset_size: int = KID_SUBSET_SIZE, seed: int = 0) -> float:
    """Unbiased MMD² with the cubic polynomial kernel, averaged over random equal-size subsets
    (seeded: the same features give the same KID)."""
    m = min(subset_size, len(features_a), len(features_b))
    if m < 2:
        raise SalcodecError("KID needs at least 2 patches per set")
    rng = np.random.default_rng(seed)
    d = features_a.shape[1]
    values = []
    for _ in range(subsets):
        a = features_a[rng.choice(len(features_a), m, replace=False)]
        b = features_b[rng.choice(len(features_b), m, replace=False)]
        k_aa, k_bb, k_ab = ((u @ v.T / d + 1) ** 3 for u, v in ((a, a), (b, b), (a, b)))
        within = (k_aa.sum() - np.trace(k_aa) + k_bb.sum() - np.trace(k_bb)) / (m * (m - 1))
        values.append(within - 2 * k_ab.mean())
    return float(np.mean(values))


class RealismCollector:
    """Features of the originals and of every (curve, setting)'s decodes, gathered image by image
    during an evaluation; `summary` turns them into FID and KID per setting."""

    def __init__(self, weights: Path):
        self.weights = weights
        self.features = InceptionFeatures(weights)
        self.originals: list[np.ndarray] = []
        self.decoded: dict[str, dict[float, dict]] = {}

    def add_original(self, image: np.ndarray) -> None:
        self.originals.append(self.features(patches(image)))

    def add(self, label: str, setting: float, bpp: float, decoded: np.ndarray) -> None:
        point = self.decoded.setdefault(label, {}).setdefault(setting, {"bpp": [], "features": []})
        point["bpp"].append(bpp)
        point["features"].append(self.features(patches(decoded)))

    def summary(self) -> dict:
        """{"weights", "patches", "curves": {label: {"settings", "bpp", "fid", "kid"}}}, bpp the mean
        over images; FID and KID against the originals' patches."""
        reference = np.concatenate(self.originals)
        if len(reference) < 2:
            return {"unavailable": f"FID/KID unavailable: the images give {len(reference)} patch, and they need 2 or more"}
        curves = {}
        for label, points in self.decoded.items():
            curve = {"settings": list(points), "bpp": [], "fid": [], "kid": []}
            for point in points.values():
                mine = np.concatenate(point["features"])
                curve["bpp"].append(float(np.mean(point["bpp"])))
                curve["fid"].append(fid(reference, mine))
                curve["kid"].append(kid(reference, mine))
            curves[label] = curve
        return {"weights": str(self.weights), "patches": len(reference), "curves": curves}


def setting_text(setting: float | str) -> str:
    """A quality or codec setting as printed (a ladder's settings are model ids)."""
    return f"{setting:g}" if isinstance(setting, (int, float)) else str(setting)


def format_realism(realism: dict) -> str:
    """The summary's FID/KID as a table per curve and setting, or the reason there is none."""
    if "unavailable" in realism:
        return realism["unavailable"]
    lines = [f"FID and KID×1000 against the originals ({realism['patches']} patches of {PATCH}²; lower is more realistic)",
             "| codec | setting | bpp | FID | KID×1000 |", "|---|---|---|---|---|"]
    for label, c in realism["curves"].items():
        for setting, bpp, f, k in zip(c["settings"], c["bpp"], c["fid"], c["kid"]):
            lines.append(f"| {label} | {setting_text(setting)} | {bpp:.4f} | {f:.2f} | {1000 * k:.2f} |")
    return "\n".join(lines)
