"""Building a bundle's parts from a model (torch and onnx are needed here, and only here).

The graphs are traced from the same code the torch engine runs when coding (no autograd, so the
transposed convolutions are their sub-pixel form), with free image sizes. The tables are the
integer CDFs the range coder uses, the exact hyper-synthesis's integer weights and the few
constants that pick a latent's table, all copied from the loaded model, not recomputed.
"""
from __future__ import annotations

import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

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
    _square_by_multiplying(path)


def _square_by_multiplying(path: Path) -> None:
    """Rewrite every Pow(x, 2) of a graph (GDN squares its input) as Mul(x, x).

    ONNX Runtime runs convolutions in a blocked channel layout (NCHWc) and converts tensors to and
    from it around operators that lack that layout; Pow lacks it and Mul has it. So each GDN's
    square cost two layout conversions besides itself: about 12 % of a convolution-GDN-convolution
    block of 64 channels at 128×192 (60 → 52 ms under load). Both give x·x rounded once.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    constants = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    constants |= {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                  if n.op_type == "Constant" and n.attribute and n.attribute[0].name == "value"}
    changed = False
    for i, node in enumerate(graph.node):
        exponent = constants.get(node.input[1]) if node.op_type == "Pow" else None
        if exponent is not None and exponent.size == 1 and float(exponent.reshape(())) == 2.0:
            graph.node[i].CopyFrom(helper.make_node("Mul", [node.input[0], node.input[0]], list(node.output), name=node.name))
            changed = True
    if changed:
        used = {name for node in graph.node for name in node.input}
        unused = [n for n in graph.node if n.op_type == "Constant" and n.output[0] not in used]  # the exponents
        for node in unused:
            graph.node.remove(node)
        onnx.save(model, str(path))


class _Stage(nn.Module):
    """A stage of a model's coding path as a module the exporter can trace: `step(transform, *inputs)`
    with `step` one of models/hyperprior's functions and `transform` the module whose layers it uses."""

    def __init__(self, transform: nn.Module, step: Callable[..., Any]):
        super().__init__()
        self.transform, self.step = transform, step

    def forward(self, *inputs: torch.Tensor) -> Any:
        return self.step(self.transform, *inputs)


def _whole_analysis(transform: nn.Module, x: torch.Tensor, quality_map: torch.Tensor,
                    q0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    from ..models.hyperprior import analyze, hyper_analyze
    y, cond = analyze(transform, x, quality_map, q0)
    return y, hyper_analyze(transform, y, cond)


def _skip_zero_taps(path: Path, min_channels: int = 32) -> None:
    """Rewrite an exported synthesis so each phase of a wide transposed convolution runs only the
    kernel taps it has.

    A traced SubPixelConvTranspose2d is one taps×taps convolution with s²·C_out channels and a
    depth-to-space (CRD order). For a 5×5, stride-2 layer the phases have only 3×3, 3×2, 2×3 and
    2×2 taps, so 36 multiply-adds are spent per 25 useful ones. Here each phase becomes its own
    convolution without its all-zero edge rows and columns (asymmetric padding keeps the geometry),
    and the phases are concatenated phase-major for a DCR depth-to-space. Dropping taps that are
    zero changes no output. Layers with few output channels (the RGB layer) lose more to running
    s² convolutions than they save, and keep their form.
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    weights |= {n.output[0]: numpy_helper.to_array(n.attribute[0].t) for n in graph.node
                if n.op_type == "Constant" and n.attribute[0].name == "value"}
    consumers: dict[str, list] = {}
    for node in graph.node:
        for name in node.input:
            consumers.setdefault(name, []).append(node)
    nodes, replaced = [], set()  # outputs of the depth-to-space nodes rewritten with their convolution
    for node in graph.node:
        if node.op_type == "DepthToSpace" and node.output[0] in replaced:
            continue
        after = consumers.get(node.output[0], [])
        shuffle = after[0] if len(after) == 1 and after[0].op_type == "DepthToSpace" else None
        attrs = {a.name: helper.get_attribute_value(a) for a in shuffle.attribute} if shuffle else {}
        weight = weights.get(node.input[1]) if node.op_type == "Conv" and len(node.input) == 3 else None
        if shuffle is None or weight is None or attrs.get("mode", b"DCR") != b"CRD" or node.input[2] not in weights:
            nodes.append(node)
            continue
        s = attrs["blocksize"]
        c_out, c_in, taps = weight.shape[0] // (s * s), weight.shape[1], weight.shape[-1]
        conv = {a.name: helper.get_attribute_value(a) for a in node.attribute}
        plain = list(conv.get("pads", [])) == [taps // 2] * 4 and conv.get("group", 1) == 1 and \
            all(list(conv.get(k, [1, 1])) == [1, 1] for k in ("strides", "dilations"))
        kernels, bias = weight.reshape(c_out, s * s, c_in, taps, taps), weights[node.input[2]].reshape(c_out, s * s)
        if c_out < min_channels or not plain or not np.abs(kernels).sum((0, 2, 3, 4)).all():
            nodes.append(node)
            continue
        phases = []
        for phase in range(s * s):
            k = kernels[:, phase]
            rows = np.flatnonzero(np.abs(k).sum((0, 1, 3)))
            cols = np.flatnonzero(np.abs(k).sum((0, 1, 2)))
            r0, r1, c0, c1 = rows[0], rows[-1], cols[0], cols[-1]
            name = f"{node.output[0]}_phase{phase}"
            graph.initializer.extend([numpy_helper.from_array(np.ascontiguousarray(k[:, :, r0:r1 + 1, c0:c1 + 1]), name + "_w"),
                                      numpy_helper.from_array(np.ascontiguousarray(bias[:, phase]), name + "_b")])
            centre = taps // 2  # the traced convolution pads by taps // 2 on every side
            pads = [centre - r0, centre - c0, r1 - centre, c1 - centre]  # top, left, bottom, right
            nodes.append(helper.make_node("Conv", [node.input[0], name + "_w", name + "_b"], [name], pads=pads))
            phases.append(name)
        nodes.append(helper.make_node("Concat", phases, [node.output[0] + "_phases"], axis=1))
        nodes.append(helper.make_node("DepthToSpace", [node.output[0] + "_phases"], list(shuffle.output), blocksize=s, mode="DCR"))
        replaced.add(shuffle.output[0])
    used = {name for node in nodes for name in node.input} | {o.name for o in graph.output}
    nodes = [n for n in nodes if n.op_type != "Constant" or n.output[0] in used]  # the replaced kernels
    del graph.node[:]
    graph.node.extend(nodes)
    kept = [t for t in graph.initializer if t.name in used]
    del graph.initializer[:]
    graph.initializer.extend(kept)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def _hyperprior(model_id: str) -> tuple[nn.Module, bytes]:
    from ..models.hyperprior import QualityMapHyperprior
    from ..models.registry import load_model
    model, digest = load_model(model_id)
    if not isinstance(model, QualityMapHyperprior):
        raise NotSupported(f"the onnx engine codes quality-map-hyperprior models, not {type(model).__name__}")
    return model, digest


def export_analysis(model_id: str, encoder: str, path: Path, stage: str = "whole") -> None:
    """g_a and h_a, as one graph for whole images (stage 'whole': image x (1×3×H×W in [0, 1]),
    quality map (1×1×H×W), q0 (1) → latents y, z) or as the two graphs tiled coding runs tile by
    tile (stage 'g_a': the same inputs → y and the quality features `cond`; stage 'h_a': y, cond → z)."""
    model, _ = _hyperprior(model_id)
    transform = model
    if encoder != "default":
        from ..models.transforms import load_encoder
        transform = load_encoder(model_id, encoder)
    x, q, q0 = torch.rand(1, 3, 128, 128), torch.full((1, 1, 128, 128), 0.5), torch.tensor([0.5])
    free = {"x": {2: "height", 3: "width"}, "quality_map": {2: "height", 3: "width"}}
    from ..models.hyperprior import analyze, hyper_analyze
    if stage == "whole":
        _export_onnx(_Stage(transform, _whole_analysis), (x, q, q0), ["x", "quality_map", "q0"], ["y", "z"], free, path)
    elif stage == "g_a":
        _export_onnx(_Stage(transform, analyze), (x, q, q0), ["x", "quality_map", "q0"], ["y", "cond"], free, path)
    elif stage == "h_a":
        with torch.no_grad():
            y, cond = analyze(transform.eval(), x, q, q0)
        free = {"y": {2: "h", 3: "w"}, "cond": {2: "h", 3: "w"}}
        _export_onnx(_Stage(transform, hyper_analyze), (y, cond), ["y", "cond"], ["z"], free, path)
    else:
        raise ValueError(f"unknown analysis stage '{stage}'")


def export_synthesis(model_id: str, decoder: str, path: Path) -> None:
    """g_s: quantized latents (1×M×h×w) and q0 (1) → reconstruction (1×3×16h×16w, not clamped)."""
    model, _ = _hyperprior(model_id)
    transform = model
    if decoder != "mse":
        from ..models.transforms import load_decoder
        transform = load_decoder(model_id, decoder)
    export_synthesis_graph(transform, path)


def export_synthesis_graph(transform: nn.Module, path: Path) -> None:
    """The graph of a synthesis (a model, or a `SynthesisTransform` of any widths) as the engine runs it."""
    from ..models.hyperprior import synthesize
    y_hat, q0 = torch.round(torch.randn(1, transform.inverse_gain.numel(), 8, 8)), torch.tensor([0.5])
    module = _Stage(transform, synthesize).eval()
    with torch.no_grad():  # builds the sub-pixel kernels once, so the graph holds them as constants
        module(y_hat, q0)  # instead of tracing the hundreds of copies that assemble them
    _export_onnx(module, (y_hat, q0), ["y_hat", "q0"], ["x_hat"], {"y_hat": {2: "h", 3: "w"}}, path)
    _skip_zero_taps(path)


def export_saliency(weights: Path, path: Path) -> None:
    """The learned saliency network at its fixed input size: 1×3×240×320 in [0, 1] → density."""
    from ..saliency.learned import INPUT_SIZE, LearnedPredictor
    net = LearnedPredictor(weights).net
    _export_onnx(net, (torch.rand(1, 3, *INPUT_SIZE),), ["x"], ["density"], {}, path)


def _exact_layers(prefix: str, network: nn.Sequential) -> dict[str, np.ndarray]:
    """The layers of an exact network (models/exact.py) as arrays named `<prefix>_<i>_…`."""
    from ..models import exact
    layers = exact.ExactNetwork(network).layers
    arrays = {f"{prefix}_layers": np.array(len(layers))}
    for i, layer in enumerate(layers):
        if layer[0] == "leaky":
            arrays[f"{prefix}_{i}_kind"], arrays[f"{prefix}_{i}_slope"] = np.array("leaky"), np.array(layer[1])
            continue
        _, module, weight, bias, shift = layer
        transposed = isinstance(module, nn.ConvTranspose2d)
        k, s, p = module.kernel_size[0], module.stride[0], module.padding[0]
        if transposed and (k != 2 * p + 1 or module.output_padding[0] != s - 1):
            raise NotSupported(f"{prefix} has a transposed convolution of another geometry")
        if not transposed and (s != 1 or k != 2 * p + 1):
            raise NotSupported(f"{prefix} has a convolution of another geometry")
        arrays[f"{prefix}_{i}_kind"] = np.array("deconv" if transposed else "conv")
        if weight.abs().max() >= 2**15:
            raise NotSupported(f"{prefix} weights do not fit 16 bits")
        # integers below 2^13 (exact.WEIGHT_BITS): stored as int16, a quarter of their float64 size
        arrays[f"{prefix}_{i}_weight"], arrays[f"{prefix}_{i}_bias"] = weight.numpy().astype(np.int16), bias.numpy()
        arrays[f"{prefix}_{i}_geometry"] = np.array([s, p, shift])
    return arrays


def export_tables(model_id: str, path: Path) -> None:
    """The coding tables and the exact h_s (and context networks) of a quality-map-hyperprior model, as one .npz."""
    from ..models import exact
    from ..models.hyperprior import CONTEXT_HALO, CONTEXT_TILE
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
        # tiled coding (images above codec/encoded.TILE_ABOVE_PIXELS): the torch engine's geometry
        "tiling": np.array([model.ANALYSIS_HALO, model.HYPER_ANALYSIS_TILE, model.HYPER_ANALYSIS_HALO,
                            model.SYNTHESIS_HALO, exact.TILE_Z, exact.HALO_Z]),
    }
    networks = {"h_s": model.h_s}
    if model.channel_context is not None:
        networks |= {f"context_{j}": net for j, net in enumerate(model.channel_context)}
    if model.spatial_context is not None:
        networks |= {f"spatial_{j}": net for j, net in enumerate(model.spatial_context)}
    if model.channel_context is not None or model.spatial_context is not None:
        arrays["context"] = np.array([model.slices, CONTEXT_TILE, CONTEXT_HALO])
    for prefix, network in networks.items():
        arrays |= _exact_layers(prefix, network)
    with open(path, "wb") as f:
        np.savez(f, **arrays)
