"""Building a bundle's parts from a model (torch and onnx are needed here, and only here).

The graphs are traced from the same code the torch engine runs when coding (no autograd, so the
transposed convolutions are their sub-pixel form), with free image sizes. The tables are the
integer CDFs the range coder uses, the exact hyper-synthesis's integer weights and the few
constants that pick a latent's table, all copied from the loaded model, not recomputed.
"""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .bundle import NotSupported


def _export_onnx(module: nn.Module, inputs: tuple[torch.Tensor, ...], input_names: list[str],
                 output_names: list[str], free_axes: dict[str, dict[int, str]], path: Path) -> None:
    try:
        import onnx  # noqa: F401  (the exporter needs it; say so plainly if it is missing)
    except ImportError:
        raise NotSupported("building the onnx engine's graphs needs the onnx package") from None
    with torch.no_grad(), warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notices
        torch.onnx.export(module.eval(), inputs, str(path), dynamo=False, input_names=input_names,
                          output_names=output_names, dynamic_axes=free_axes, opset_version=17)


class _Analysis(nn.Module):
    def __init__(self, transform: nn.Module):
        super().__init__()
        self.transform = transform

    def forward(self, x: torch.Tensor, quality_map: torch.Tensor, q0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        from ..models.hyperprior import analyze, hyper_analyze
        y, cond = analyze(self.transform, x, quality_map, q0)
        return y, hyper_analyze(self.transform, y, cond)


class _Synthesis(nn.Module):
    def __init__(self, transform: nn.Module):
        super().__init__()
        self.transform = transform

    def forward(self, y_hat: torch.Tensor, q0: torch.Tensor) -> torch.Tensor:
        from ..models.hyperprior import synthesize
        return synthesize(self.transform, y_hat, q0)


def _hyperprior(model_id: str) -> tuple[nn.Module, bytes]:
    from ..models.hyperprior import QualityMapHyperprior
    from ..models.registry import load_model
    model, digest = load_model(model_id)
    if not isinstance(model, QualityMapHyperprior):
        raise NotSupported(f"the onnx engine codes quality-map-hyperprior models, not {type(model).__name__}")
    return model, digest


def export_analysis(model_id: str, encoder: str, path: Path) -> None:
    """g_a and h_a: image x (1×3×H×W in [0, 1]), quality map (1×1×H×W), q0 (1) → latents y, z."""
    model, _ = _hyperprior(model_id)
    transform = model
    if encoder != "default":
        from ..models.transforms import load_encoder
        transform = load_encoder(model_id, encoder)
    x, q, q0 = torch.rand(1, 3, 128, 128), torch.full((1, 1, 128, 128), 0.5), torch.tensor([0.5])
    free = {"x": {2: "height", 3: "width"}, "quality_map": {2: "height", 3: "width"}}
    _export_onnx(_Analysis(transform), (x, q, q0), ["x", "quality_map", "q0"], ["y", "z"], free, path)


def export_synthesis(model_id: str, decoder: str, path: Path) -> None:
    """g_s: quantized latents (1×M×h×w) and q0 (1) → reconstruction (1×3×16h×16w, not clamped)."""
    model, _ = _hyperprior(model_id)
    transform = model
    if decoder != "mse":
        from ..models.transforms import load_decoder
        transform = load_decoder(model_id, decoder)
    y_hat, q0 = torch.round(torch.randn(1, model.M, 8, 8)), torch.tensor([0.5])
    module = _Synthesis(transform).eval()
    with torch.no_grad():  # builds the sub-pixel kernels once, so the graph holds them as constants
        module(y_hat, q0)  # instead of tracing the hundreds of copies that assemble them
    _export_onnx(module, (y_hat, q0), ["y_hat", "q0"], ["x_hat"], {"y_hat": {2: "h", 3: "w"}}, path)


def export_saliency(weights: Path, path: Path) -> None:
    """The learned saliency network at its fixed input size: 1×3×240×320 in [0, 1] → density."""
    from ..saliency.learned import INPUT_SIZE, LearnedPredictor
    net = LearnedPredictor(weights).net
    _export_onnx(net, (torch.rand(1, 3, *INPUT_SIZE),), ["x"], ["density"], {}, path)


def export_tables(model_id: str, path: Path) -> None:
    """The coding tables and the exact h_s of a quality-map-hyperprior model, as one .npz."""
    from ..models import exact
    model, digest = _hyperprior(model_id)
    eb, gc = model.entropy_bottleneck, model.gaussian_conditional
    table = gc.scale_table
    arrays: dict[str, np.ndarray] = {
        "model_id": np.array(model_id), "digest": np.frombuffer(digest, np.uint8),
        "N": np.array(model.N), "M": np.array(model.M), "stride": np.array(model.stride),
        "eb_cdf": eb._quantized_cdf.numpy(), "eb_cdf_length": eb._cdf_length.numpy(),
        "eb_offset": eb._offset.numpy(), "eb_medians": eb._get_medians().detach().reshape(-1).numpy(),
        "gc_cdf": gc._quantized_cdf.numpy(), "gc_cdf_length": gc._cdf_length.numpy(),
        "gc_offset": gc._offset.numpy(), "gc_scale_bound": gc.lower_bound_scale.bound.reshape(()).numpy(),
        "gc_boundaries": torch.sqrt(table[:-1] * table[1:]).numpy(),  # as scale_indexes computes them
        "h_s_input_frac_bits": np.array(exact.INPUT_FRAC_BITS), "h_s_act_frac_bits": np.array(exact.ACT_FRAC_BITS),
    }
    layers = exact.ExactHyperSynthesis(model.h_s).layers
    arrays["h_s_layers"] = np.array(len(layers))
    for i, layer in enumerate(layers):
        if layer[0] == "leaky":
            arrays[f"h_s_{i}_kind"], arrays[f"h_s_{i}_slope"] = np.array("leaky"), np.array(layer[1])
            continue
        _, module, weight, bias, shift = layer
        transposed = isinstance(module, nn.ConvTranspose2d)
        k, s, p = module.kernel_size[0], module.stride[0], module.padding[0]
        if transposed and (k != 2 * p + 1 or module.output_padding[0] != s - 1):
            raise NotSupported("h_s has a transposed convolution of another geometry")
        arrays[f"h_s_{i}_kind"] = np.array("deconv" if transposed else "conv")
        if weight.abs().max() >= 2**15:
            raise NotSupported("h_s weights do not fit 16 bits")
        # integers below 2^13 (exact.WEIGHT_BITS): stored as int16, a quarter of their float64 size
        arrays[f"h_s_{i}_weight"], arrays[f"h_s_{i}_bias"] = weight.numpy().astype(np.int16), bias.numpy()
        arrays[f"h_s_{i}_geometry"] = np.array([s, p, shift])
    with open(path, "wb") as f:
        np.savez(f, **arrays)
