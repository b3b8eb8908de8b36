"""Coding `.sgc` files of the default family without torch: ONNX Runtime runs the transforms,
numpy the exact hyper-synthesis and the table choice, CompressAI's compiled rANS coder the streams.

Every step mirrors codec/codec.py and models/hyperprior.py (the torch engine) and writes the same
format; the parts come from the model's bundle (bundle.py). Images above the tiling size are
coded tile by tile with the torch engine's geometry (models/tiling.py). What this engine does not
handle — other model families — raises NotSupported, and the caller uses the torch engine instead.
"""
from __future__ import annotations

from array import array
from functools import lru_cache
from pathlib import Path

import numpy as np

from ..codec import bitstream
from ..codec.encoded import TILE_ABOVE_PIXELS, TILE_SIDE, Encoded, pad_to_stride, padded_size
from ..codec.memory import return_large_blocks_to_the_system
from ..codec.orientation import flip
from ..codec.quality import q0_byte, quality_map, quality_to_q0
from ..codec.rounding import code_lengths, rd_round
from ..errors import SalcodecError
from ..models import DECODERS, ENCODERS, SHARES_TRANSFORMS_OF, model_file, transform_file
from ..models.tiling import tiled
from .bundle import NotSupported, ensure_part
from .exact import ExactNetwork

_threads: int | None = None


def set_threads(count: int | None) -> None:
    """Threads for the transforms' sessions (None: ONNX Runtime's choice, one per core)."""
    global _threads
    if count != _threads:
        _threads = count
        _session.cache_clear()


@lru_cache(maxsize=16)  # every graph one process may use: 3 analysis forms × 2 encoders, 3 decoders, saliency
def _session(path: Path):
    try:
        import onnxruntime as ort
    except ImportError:
        raise NotSupported("onnxruntime is not installed") from None
    options = ort.SessionOptions()
    options.intra_op_num_threads = _threads or 0
    options.inter_op_num_threads = 1
    options.log_severity_level = 3  # errors only
    # memory patterns are planned per input shape and kept: over the 24 Kodak images (two shapes)
    # benchmarks/speed.py's salcodec+auto[onnx] process peaked at 1,281 MB with them and 794 MB
    # without, at the same speed (0.44 / 0.39 s and 0.43 / 0.39 s per image)
    options.enable_mem_pattern = False
    # ONNX Runtime's threads spin for a while after each run, waiting for the next; the numpy work
    # between two runs (the exact h_s, the range coder) then shares the two cores with them. Without
    # spinning a Kodak compress with auto saliency and the fast setting took 134-151 ms instead of
    # 183-184 ms, and decompressing as long as before (benchmarks/onnx_spinning.py)
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    try:
        return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    except Exception as exc:  # ONNX Runtime raises its own types for unreadable graphs
        _discard_damaged(path, exc)


def _discard_damaged(path: Path, exc: Exception):
    """A cached part that does not load (a damaged disk, a foreign file) is removed, so that the
    next use rebuilds it; this call is left to the torch engine."""
    path.unlink(missing_ok=True)
    raise NotSupported(f"cached part {path.name} could not be read ({type(exc).__name__}) and was removed") from None


@lru_cache(maxsize=1)
def _rans():
    from .._compressai_light import install_light_package
    install_light_package()
    from compressai.ans import BufferedRansEncoder, RansDecoder, RansEncoder
    return RansEncoder, RansDecoder, BufferedRansEncoder


class Tables:
    """A model's coding tables (export.export_tables), with the lists the rANS coder takes."""

    def __init__(self, path: Path):
        with np.load(path) as npz:
            arrays = {k: npz[k] for k in npz.files}
        self.model_id, self.digest = str(arrays["model_id"]), arrays["digest"].tobytes()
        self.N, self.M, self.stride = int(arrays["N"]), int(arrays["M"]), int(arrays["stride"])
        self.medians = arrays["eb_medians"].astype(np.float32)
        self.boundaries, self.scale_bound = arrays["gc_boundaries"], arrays["gc_scale_bound"]
        # the boundaries are geometric midpoints of a geometric table: evenly spaced in the log domain
        logs = np.log(self.boundaries.astype(np.float64))
        self.log_first, self.log_step = np.float32(logs[0]), np.float32((logs[-1] - logs[0]) / max(len(logs) - 1, 1))
        self.fenced = np.concatenate([[-np.inf], self.boundaries, [np.inf]]).astype(np.float32)
        self.eb = tuple(arrays[f"eb_{k}"] for k in ("cdf", "cdf_length", "offset"))
        self.gc = tuple(arrays[f"gc_{k}"] for k in ("cdf", "cdf_length", "offset"))
        self.eb_bits, self.gc_bits = code_lengths(self.eb[0]), code_lengths(self.gc[0])
        self.eb_lists = tuple(a.tolist() for a in self.eb)
        self.gc_lists = tuple(a.tolist() for a in self.gc)
        self.h_s = ExactNetwork(arrays)
        # the contexts (models/hyperprior.py): y in slices, each corrected from those before it (channel),
        # and each in two passes over a checkerboard, the second corrected from the first (spatial)
        self.slices, self.context_tile, self.context_halo = (int(v) for v in arrays.get("context", (1, 0, 0)))
        self.context, self.spatial = ([ExactNetwork(arrays, f"{kind}_{j}") for j in range(self.slices)]
                                      if f"{kind}_0_layers" in arrays else [] for kind in ("context", "spatial"))
        (self.analysis_halo, self.hyper_analysis_tile, self.hyper_analysis_halo, self.synthesis_halo,
         self.h_s_tile, self.h_s_halo) = (int(v) for v in arrays["tiling"])

    def scales_and_means(self, z_hat: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """h_s, in tiles of hyper-latents on big images (its float64 unfolding would take about 1 GB
        at 12 megapixels); the arithmetic being exact, tiles change no bit."""
        if max(z_hat.shape[-2:]) <= self.h_s_tile + self.h_s_halo:
            out = self.h_s(z_hat)
        else:
            (out,) = tiled(lambda t: (self.h_s(t[0])[None],), (z_hat[None],), self.h_s_tile, self.h_s_halo, 4)
            out = out[0]
        return out[: self.M], out[self.M:]

    def _run_context(self, network: ExactNetwork, inputs: np.ndarray) -> np.ndarray:
        if max(inputs.shape[-2:]) <= self.context_tile + self.context_halo:
            return network(inputs)
        (out,) = tiled(lambda t: (network(t[0])[None],), (inputs[None],), self.context_tile, self.context_halo, 1)
        return out[0]

    def slice_parameters(self, scales: np.ndarray, means: np.ndarray, i: int,
                         decoded: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
        """As QualityMapHyperprior.slice_parameters: slice i's scales and means, corrected by the
        channel context from the `decoded` slices before it (exact, so both engines agree)."""
        size = self.M // self.slices
        scales, means = scales[i * size:(i + 1) * size], means[i * size:(i + 1) * size]
        if not self.context:
            return scales, means
        correction = self._run_context(self.context[i], np.concatenate([scales, means, *decoded]))
        return scales + correction[:size], means + correction[size:]

    def spatial_parameters(self, scales: np.ndarray, means: np.ndarray, i: int,
                           anchor_symbols: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """As QualityMapHyperprior.spatial_parameters: the checkerboard's second pass."""
        size = scales.shape[0]
        correction = self._run_context(self.spatial[i], np.concatenate([anchor_symbols, scales, means]))
        anchors = anchor_mask(scales.shape[-2:])
        return np.where(anchors, scales, scales + correction[:size]), np.where(anchors, means, means + correction[size:])

    def scale_indexes(self, scales: np.ndarray) -> np.ndarray:
        """As QualityMapHyperprior.scale_indexes: the table whose scale is nearest in the log domain,
        that is the number of boundaries below the scale (searchsorted's answer). The log domain
        gives it to within one, since the boundaries are evenly spaced there; one comparison each
        way with the boundaries themselves makes it exact: 1.6 ms on a Kodak image's y, against 6 ms
        for a binary search."""
        scales = np.maximum(scales, self.scale_bound)
        guess = np.ceil((np.log(scales) - self.log_first) / self.log_step)
        index = np.clip(guess, 0, len(self.boundaries), out=guess).astype(np.int32)
        index += scales > self.fenced[index + 1]  # fenced[i + 1] is boundary i, fenced[i] boundary i − 1
        index -= scales <= self.fenced[index]
        return index

    def channel_indexes(self, shape: tuple[int, int]) -> np.ndarray:
        return np.repeat(np.arange(self.N, dtype=np.int32), shape[0] * shape[1])


def anchor_mask(shape: tuple[int, int]) -> np.ndarray:
    """As models/hyperprior.anchor_mask: the checkerboard's first pass."""
    return (np.arange(shape[0])[:, None] + np.arange(shape[1])[None, :]) % 2 == 0


def _model_sources(model_id: str) -> list[Path]:
    """The weights files a model's parts are built from: its own and, for a model that shares
    another's transforms (and may be stored as differences from it), that model's."""
    source = model_file(model_id)
    if source is None:
        raise NotSupported(f"model '{model_id}' is not installed")
    base = model_file(SHARES_TRANSFORMS_OF.get(model_id, ""))
    return [source] + ([base] if base is not None else [])


def _tables(model_id: str) -> Tables:
    def build(tmp: Path) -> None:
        from .export import export_tables  # here, on first use only: it needs torch
        export_tables(model_id, tmp)
    return _load_tables(ensure_part("tables", _model_sources(model_id), ".npz", build))


@lru_cache(maxsize=4)
def _load_tables(path: Path) -> Tables:
    try:
        return Tables(path)
    except Exception as exc:  # numpy's and zipfile's errors for a damaged archive, KeyError for a foreign one
        _discard_damaged(path, exc)


def _second_sources(model_id: str, kind: str, role: str, kinds: tuple[str, ...]) -> list[Path]:
    """The weights files a transform is built from: the model's, and a second transform's if `kind`
    is not the model's own (the first of `kinds`)."""
    if kind not in kinds:
        raise NotSupported(f"unknown {role} '{kind}'")
    sources = _model_sources(model_id)
    if kind != kinds[0]:
        second = transform_file(model_id, kind, role)
        if second is None:
            raise NotSupported(f"no {kind} {role} is installed for model '{model_id}'")
        sources.append(second)
    return sources


def _analysis(model_id: str, encoder: str, stage: str = "whole"):
    """The analysis graph: g_a and h_a in one ('whole'), or either alone for tiles ('g_a', 'h_a')."""
    sources = _second_sources(model_id, encoder, "encoder", ENCODERS)

    def build(tmp: Path) -> None:
        from .export import export_analysis
        export_analysis(model_id, encoder, tmp, stage)
    role = f"analysis-{encoder}" if stage == "whole" else f"analysis-{stage}-{encoder}"
    return _session(ensure_part(role, sources, ".onnx", build))


def _synthesis(model_id: str, decoder: str):
    sources = _second_sources(model_id, decoder, "decoder", DECODERS)

    def build(tmp: Path) -> None:
        from .export import export_synthesis
        export_synthesis(model_id, decoder, tmp)
    return _session(ensure_part(f"synthesis-{decoder}", sources, ".onnx", build))


def _unit(pixels: np.ndarray) -> np.ndarray:
    """uint8 pixels to the transforms' floats in [0, 1]."""
    return pixels.astype(np.float32) / np.float32(255)


def symbol_array(symbols: list[int]) -> np.ndarray:
    """The rANS decoder's list of (int32) symbols as float32, through a C array: about half the
    time numpy takes to convert a Python list (6 against 9 ms for a Kodak image's y)."""
    return np.frombuffer(array("i", symbols), np.int32).astype(np.float32)


def _table_bits(symbols: np.ndarray, indexes: np.ndarray, tables: tuple[np.ndarray, ...], lengths: np.ndarray) -> float:
    """The code length of `symbols` under the quantized tables whose per-symbol code lengths are
    `lengths` (rounding.code_lengths); values past a table's ends are counted as its escape symbol
    (their few bypass bits are left out)."""
    _, length, offset = tables
    value = np.clip(symbols - offset[indexes], 0, length[indexes] - 2)
    return float(lengths[indexes, value].sum())


def encode(image: np.ndarray, quality: float, saliency: np.ndarray | None, strength: float, model_id: str,
           encoder: str = "default") -> Encoded:
    """As codec.encode."""
    tables = _tables(model_id)
    h, w = image.shape[:2]
    x = pad_to_stride(np.asarray(image, np.uint8), tables.stride).transpose(2, 0, 1)[None]  # uint8 until a tile needs it
    q = quality_map((h, w), quality_to_q0(quality), saliency, strength)
    q0 = q0_byte(q)
    q_map, q0_in = pad_to_stride(q, tables.stride)[None, None].astype(np.float32), np.array([q0 / 255.0], np.float32)
    tile = TILE_SIDE if x.shape[-2] * x.shape[-1] > TILE_ABOVE_PIXELS else 0
    if tile:
        return_large_blocks_to_the_system()
        g_a, h_a = _analysis(model_id, encoder, "g_a"), _analysis(model_id, encoder, "h_a")
        y, cond = tiled(lambda t, qt: g_a.run(None, {"x": _unit(t), "quality_map": np.ascontiguousarray(qt), "q0": q0_in}),
                        (x, q_map), tile, tables.analysis_halo, 1 / 16)
        (z,) = tiled(lambda t, c: h_a.run(None, {"y": np.ascontiguousarray(t), "cond": np.ascontiguousarray(c)}),
                     (y, cond), tables.hyper_analysis_tile, tables.hyper_analysis_halo, 1 / 4)
    else:
        y, z = _analysis(model_id, encoder).run(None, {"x": _unit(x), "quality_map": q_map, "q0": q0_in})
    y, z = y[0], z[0]
    encoder_cls, _, slices_encoder_cls = _rans()
    z_symbols = np.round(z - tables.medians[:, None, None]).astype(np.int32).reshape(-1)
    z_indexes = tables.channel_indexes(z.shape[1:])
    z_string = encoder_cls().encode_with_indexes(z_symbols.tolist(), z_indexes.tolist(), *tables.eb_lists)
    z_hat = z_symbols.reshape(z.shape).astype(np.float32) + tables.medians[:, None, None]
    hyper_scales, hyper_means = tables.scales_and_means(z_hat)
    est_bits = _table_bits(z_symbols, z_indexes, tables.eb, tables.eb_bits)
    y_coder, decoded = slices_encoder_cls(), []

    def encode_symbols(symbols: np.ndarray, indexes: np.ndarray) -> float:
        y_indexes, y_symbols = indexes.reshape(-1), symbols.astype(np.int32).reshape(-1)
        y_coder.encode_with_indexes(y_symbols.tolist(), y_indexes.tolist(), *tables.gc_lists)
        return _table_bits(y_symbols, y_indexes, tables.gc, tables.gc_bits)

    def rd_symbols(residuals: np.ndarray, indexes: np.ndarray) -> np.ndarray:  # as QualityMapHyperprior.rd_symbols
        return rd_round(residuals, indexes, tables.gc[2], tables.gc[1], tables.gc_bits)
    for i, y_slice in enumerate(np.split(y, tables.slices)):
        scales, means = tables.slice_parameters(hyper_scales, hyper_means, i, decoded)
        indexes = tables.scale_indexes(scales)
        y_symbols = rd_symbols(y_slice - means, indexes)
        if tables.spatial:  # the anchors, then the others from them
            anchors = anchor_mask(y_slice.shape[-2:])
            est_bits += encode_symbols(y_symbols[:, anchors], indexes[:, anchors])
            scales, means = tables.spatial_parameters(scales, means, i, y_symbols * anchors)
            others = ~anchors  # the anchors' scales and means are unchanged
            indexes = tables.scale_indexes(scales[:, others])
            y_symbols[:, others] = rd_symbols(y_slice[:, others] - means[:, others], indexes)
            est_bits += encode_symbols(y_symbols[:, others], indexes)
        else:
            est_bits += encode_symbols(y_symbols, indexes)
        decoded.append(y_symbols + means)
    y_string = y_coder.flush()
    flags = bitstream.FLAG_SPATIAL_QUALITY if saliency is not None and strength != 0 else 0
    header = bitstream.Header(model_id, tables.digest, h, w, q0, flags, tile)
    return Encoded(bitstream.pack(bitstream.Container(header, [y_string, z_string])), h, w, est_bits)


def decode(data: bytes, max_pixels: int = bitstream.DEFAULT_MAX_PIXELS, decoder: str = "mse") -> np.ndarray:
    """As codec.decode. Files this engine cannot vouch for — an unknown model or other weights, a
    stream count or tiling it does not expect — raise NotSupported, and the torch engine then
    reports them in its own words."""
    container = bitstream.unpack(data, max_pixels=max_pixels)
    head = container.header
    tables = _tables(head.model_id)
    if head.digest != tables.digest or len(container.streams) != 2:
        raise NotSupported("file needs the torch engine's checks")
    synthesis = _synthesis(head.model_id, decoder)
    y_string, z_string = container.streams
    padded = padded_size(head.height, head.width, tables.stride)
    z_shape = (padded[0] // tables.stride, padded[1] // tables.stride)
    _, decoder_cls, _ = _rans()
    z_indexes = tables.channel_indexes(z_shape)
    try:
        z_symbols = decoder_cls().decode_with_indexes(bitstream.pad_stream(z_string, z_indexes.size),
                                                      z_indexes.tolist(), *tables.eb_lists)
        z_hat = symbol_array(z_symbols).reshape(tables.N, *z_shape) + tables.medians[:, None, None]
        hyper_scales, hyper_means = tables.scales_and_means(z_hat)
        y_coder, decoded = decoder_cls(), []
        y_coder.set_stream(bitstream.pad_stream(y_string, hyper_means.size))

        def decode_symbols(scales: np.ndarray) -> np.ndarray:
            symbols = y_coder.decode_stream(tables.scale_indexes(scales).reshape(-1).tolist(), *tables.gc_lists)
            return symbol_array(symbols).reshape(scales.shape)
        for i in range(tables.slices):
            scales, means = tables.slice_parameters(hyper_scales, hyper_means, i, decoded)
            if tables.spatial:  # the anchors, then the others from them
                anchors = anchor_mask(scales.shape[-2:])
                y_symbols = np.zeros_like(means)
                y_symbols[:, anchors] = decode_symbols(scales[:, anchors])
                scales, means = tables.spatial_parameters(scales, means, i, y_symbols)
                y_symbols[:, ~anchors] = decode_symbols(scales[:, ~anchors])
            else:
                y_symbols = decode_symbols(scales)
            decoded.append(y_symbols + means)
    except (RuntimeError, ValueError) as exc:
        raise SalcodecError(f"corrupt file (entropy decoding failed: {exc})") from None
    y_hat = np.concatenate(decoded)
    q0_in = np.array([head.q0 / 255.0], np.float32)

    def pixels_of(latents: np.ndarray) -> tuple[np.ndarray]:
        (x_hat,) = synthesis.run(None, {"y_hat": np.ascontiguousarray(latents), "q0": q0_in})
        # a forged file's latents can drive the synthesis to NaN: 0, as the torch engine's cast gives
        return (np.round(np.clip(np.nan_to_num(x_hat, nan=0.0), 0, 1) * np.float32(255)).astype(np.uint8),)
    if head.tile:
        return_large_blocks_to_the_system()
        (pixels,) = tiled(pixels_of, (y_hat[None],), head.tile // 16, tables.synthesis_halo // 16, 16)
    else:
        (pixels,) = pixels_of(y_hat[None])
    return flip(np.ascontiguousarray(pixels[0, :, : head.height, : head.width].transpose(1, 2, 0)), head.flags)


def predict_saliency(image: np.ndarray) -> np.ndarray:
    """The learned saliency predictor (saliency/learned.py) through ONNX Runtime: resized to its
    input with Pillow's antialiased bilinear filter (which torch's antialiased resize follows)."""
    from PIL import Image

    from ..saliency import LEARNED_WEIGHTS
    if not LEARNED_WEIGHTS.is_file():
        raise NotSupported("the learned saliency model is not installed")

    def build(tmp: Path) -> None:
        from .export import export_saliency
        export_saliency(LEARNED_WEIGHTS, tmp)
    session = _session(ensure_part("saliency", [LEARNED_WEIGHTS], ".onnx", build))
    (h_in, w_in), (h, w) = session.get_inputs()[0].shape[-2:], image.shape[:2]
    channels = [np.asarray(Image.fromarray(image[..., c].astype(np.float32) / 255).resize((w_in, h_in), Image.BILINEAR))
                for c in range(3)]
    (density,) = session.run(None, {"x": np.stack(channels)[None].astype(np.float32)})
    sal = np.asarray(Image.fromarray(density[0, 0]).resize((w, h), Image.BILINEAR))
    sal = sal - sal.min()
    return (sal / max(float(sal.max()), 1e-12)).astype(np.float32)
