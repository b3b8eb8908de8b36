"""The default model: a mean-scale hyperprior whose encoder is steered by a quality map.

Read top to bottom: analysis transform g_a(x, q), hyper-analysis h_a(y, q), factorized
entropy bottleneck for z, hyper-synthesis h_s(z) predicting Gaussian means and scales for y,
and synthesis g_s(y, q0). The spatial quality map q enters the encoder only (through SFT
layers) and is never transmitted; q0 = max q, one byte in the file, sets a per-channel gain
on the latents (their quantization precision) that the decoder inverts exactly, and modulates
g_s. Where q is below q0 the encoder alone spends fewer bits, through the SFT layers. The gain
follows q0, not the local q, because the decoder can only undo what it knows: a gain that
followed the map would leave the decoder rescaling salient latents wrongly, and the encoder
learned to cancel it, which made the first model deaf to q.

With `context_slices` > 0 the entropy model also has a channel context (Minnen & Singh 2020): y is
coded in slices of channels, and a small network per slice corrects the hyper-synthesis's scales
and means of that slice from the slices decoded before it. Decoding stays parallel over the
image; only the slices follow one another.

With `spatial_width` > 0 each slice is also coded in two passes over a checkerboard (He et al.
2021): first the anchors (half the positions, as above), then the others, whose scales and means a
second small network corrects from the decoded anchors around them. Both passes are parallel over
the image.
"""
from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from ..codec.bitstream import pad_stream
from ..codec.rounding import code_lengths, rd_round
from ._compressai import BufferedRansEncoder, EntropyBottleneck, GaussianConditional, RansDecoder
from .exact import ExactNetwork
from .layers import GDN, SFT, ForwardOutput, QualityPyramid, coding_layout, conv, deconv, to_pixels, to_unit
from .tiling import tiled

SCALE_MIN, SCALE_MAX, SCALE_LEVELS = 0.11, 256.0, 64
INITIAL_GAIN = 2.0  # latents scaled by e^(±1) at q = 1 / q = 0: about the 67× λ range


def scale_table() -> torch.Tensor:
    return torch.exp(torch.linspace(torch.log(torch.tensor(SCALE_MIN)), torch.log(torch.tensor(SCALE_MAX)), SCALE_LEVELS))


def ste_round(x: torch.Tensor) -> torch.Tensor:
    """Round in the forward pass, identity gradient in the backward pass."""
    return x + (torch.round(x) - x).detach()


class GlobalModulation(nn.Module):
    """Channel-wise affine from the scalar q0, starting as the identity (decoder side)."""

    def __init__(self, channels: int, hidden: int = 64):
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(1, hidden), nn.LeakyReLU(0.1, inplace=True))
        self.gamma = nn.Linear(hidden, channels)
        self.beta = nn.Linear(hidden, channels)
        for layer in (self.gamma, self.beta):
            nn.init.zeros_(layer.weight)
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor, q0: torch.Tensor) -> torch.Tensor:
        h = self.mlp(q0.view(-1, 1))
        return x * (1 + self.gamma(h)[:, :, None, None]) + self.beta(h)[:, :, None, None]


def synthesis_layers(M: int, widths: tuple[int, int, int]) -> tuple[nn.ModuleList, nn.ModuleList, nn.ModuleList]:
    """g_s's layers: four stride-2 deconvolutions whose three hidden layers are `widths` wide (from
    the latents' end), inverse GDN and q0 modulation between them."""
    return (nn.ModuleList([deconv(c_in, c_out) for c_in, c_out in zip((M, *widths), (*widths, 3))]),
            nn.ModuleList([GDN(c, inverse=True) for c in widths]),
            nn.ModuleList([GlobalModulation(c) for c in widths]))


def synthesize(transform: nn.Module, y_hat: torch.Tensor, q0: torch.Tensor) -> torch.Tensor:
    """g_s(ŷ, q0) with the layers of `transform` (the model itself, or a `SynthesisTransform`)."""
    h = coding_layout(y_hat) * torch.exp(-transform.inverse_gain.view(1, -1, 1, 1) * (q0.view(-1, 1, 1, 1) - 0.5))
    for i in range(3):
        h = transform.g_s_mod[i](transform.g_s_igdn[i](transform.g_s[i](h)), q0)
    return transform.g_s[3](h)


def hyper_synthesis_layers(N: int, M: int, widths: tuple[int, int], kernel: int) -> nn.Sequential:
    """h_s: two stride-2 deconvolutions `widths` wide and a stride-1 convolution to the 2M means and
    scales. Minnen et al. 2018 use widths (M, 3M/2) and kernel 3; the narrow form of a retrained
    h_s (train/hyper_synthesis.py) costs a quarter of their exact float64 arithmetic."""
    return nn.Sequential(deconv(N, widths[0]), nn.LeakyReLU(inplace=True),
                         deconv(widths[0], widths[1]), nn.LeakyReLU(inplace=True),
                         conv(widths[1], M * 2, kernel, 1))


def channel_context_layers(M: int, slices: int, width: int) -> nn.ModuleList:
    """One network per slice of y's channels: from the hyper-synthesis's scales and means of the
    slice and the decoded slices before it, corrections to those scales and means (added, so that
    the exact arithmetic's sums stay single IEEE operations). The last layers start at zero: a new
    context starts as the plain hyperprior, never worse."""
    size = M // slices
    networks = nn.ModuleList()
    for i in range(slices):
        network = nn.Sequential(conv(2 * size + i * size, width, 3, 1), nn.LeakyReLU(inplace=True),
                                conv(width, width, 3, 1), nn.LeakyReLU(inplace=True), conv(width, 2 * size, 1, 1))
        nn.init.zeros_(network[-1].weight)
        nn.init.zeros_(network[-1].bias)
        networks.append(network)
    return networks


def spatial_context_layers(M: int, slices: int, width: int) -> nn.ModuleList:
    """One network per slice of y's channels: from the slice's decoded anchor symbols (zero at the
    other positions) and its scales and means, corrections to the scales and means of the other
    positions. A 5×5 first layer sees the 12 anchors nearest each of them; the last layers start
    at zero, like the channel context's."""
    size = M // slices
    networks = nn.ModuleList()
    for _ in range(slices):
        network = nn.Sequential(conv(3 * size, width, 5, 1), nn.LeakyReLU(inplace=True),
                                conv(width, width, 1, 1), nn.LeakyReLU(inplace=True), conv(width, 2 * size, 1, 1))
        nn.init.zeros_(network[-1].weight)
        nn.init.zeros_(network[-1].bias)
        networks.append(network)
    return networks


def anchor_mask(shape: tuple[int, int]) -> torch.Tensor:
    """The checkerboard's anchors, coded first: positions whose row and column sum to an even number."""
    return (torch.arange(shape[0])[:, None] + torch.arange(shape[1])[None, :]) % 2 == 0


# exact context networks: tiles of latents; two 3×3 layers (channel context) or one 5×5 (spatial) reach 2
CONTEXT_TILE, CONTEXT_HALO = 64, 2


def analysis_layers(M: int, N: int, widths: tuple[int, int, int], cond: int) -> dict[str, nn.Module]:
    """g_a's and h_a's layers: g_a's three hidden layers `widths` channels wide (four stride-2
    convolutions, GDN and SFT between them), h_a at the model's N (its output, z, has N
    channels), one quality pyramid."""
    a, b, c = widths
    return {"quality_pyramid": QualityPyramid(cond, levels=4),
            "g_a": nn.ModuleList([conv(3, a), conv(a, b), conv(b, c), conv(c, M)]),
            "g_a_gdn": nn.ModuleList([GDN(w) for w in widths]),
            "g_a_sft": nn.ModuleList([SFT(w, cond) for w in widths]),
            "h_a": nn.ModuleList([conv(M, N, 3, 1), conv(N, N), conv(N, N)]),
            "h_a_sft": SFT(N, cond)}


def analyze(transform: nn.Module, x: torch.Tensor, quality_map: torch.Tensor, q0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """g_a(x, q) with the layers of `transform` (the model itself, or an `AnalysisTransform`):
    image, quality map and global quality to latents y, plus the quality features h_a needs
    (both at stride 16)."""
    cond = transform.quality_pyramid(coding_layout(quality_map))
    h = coding_layout(x)
    for i in range(3):
        h = transform.g_a_sft[i](transform.g_a_gdn[i](transform.g_a[i](h)), cond[i])
    return transform.g_a[3](h) * torch.exp(transform.gain.view(1, -1, 1, 1) * (q0.view(-1, 1, 1, 1) - 0.5)), cond[3]


def hyper_analyze(transform: nn.Module, y: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
    """h_a(y, q) with the layers of `transform`: latents to hyper-latents z."""
    h = F.leaky_relu(transform.h_a_sft(transform.h_a[0](y), cond))
    h = F.leaky_relu(transform.h_a[1](h))
    return transform.h_a[2](h)


class AnalysisTransform(nn.Module):
    """g_a and h_a on their own, g_a of any widths: the form a second encoder of a model takes
    (the fast encoder, models/transforms.py). It writes files the model's own decoder reads;
    its parameter names are those of the model's own analysis."""

    def __init__(self, M: int, N: int, widths: tuple[int, int, int], cond: int = 32):
        super().__init__()
        for name, module in analysis_layers(M, N, widths, cond).items():
            setattr(self, name, module)
        self.gain = nn.Parameter(torch.full((M,), INITIAL_GAIN))

    def forward(self, x: torch.Tensor, quality_map: torch.Tensor, q0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        y, cond = analyze(self, x, quality_map, q0)
        return y, hyper_analyze(self, y, cond)


class SynthesisTransform(nn.Module):
    """g_s on its own, of any widths: the form the second decoders of a model's files take (the
    GAN decoder at the model's width, the fast decoder narrower, most of all at the high
    resolutions; models/transforms.py). Its parameter names are those of the model's own synthesis."""

    def __init__(self, M: int, widths: int | tuple[int, int, int]):
        super().__init__()
        self.inverse_gain = nn.Parameter(torch.full((M,), INITIAL_GAIN))
        widths = (widths,) * 3 if isinstance(widths, int) else tuple(widths)
        self.g_s, self.g_s_igdn, self.g_s_mod = synthesis_layers(M, widths)

    def forward(self, y_hat: torch.Tensor, q0: torch.Tensor) -> torch.Tensor:
        return synthesize(self, y_hat, q0)


class QualityMapHyperprior(nn.Module):
    """Variable-rate mean-scale hyperprior with spatially adaptive rate (SFT encoder)."""

    stride = 64  # total downsampling of y (16) times that of z (4)
    n_streams = 2
    variable_rate = True
    ANALYSIS_HALO = 64  # pixels; g_a sees 30 px to each side (61 px wide), the quality pyramid 15
    SYNTHESIS_HALO = 64  # pixels (4 latents); g_s reaches about 2 latents to each side
    # h_a unfolds y (about 330 MB at 12 megapixels): tiles of 64 latents, halo 16
    HYPER_ANALYSIS_TILE, HYPER_ANALYSIS_HALO = 64, 16

    def __init__(self, N: int = 128, M: int = 192, cond: int = 32, hyper_widths: tuple[int, int] | None = None,
                 hyper_kernel: int = 3, context_slices: int = 0, context_width: int = 128, spatial_width: int = 0):
        super().__init__()
        if context_slices and M % context_slices:
            raise ValueError(f"context_slices must divide M = {M}")
        self.N, self.M = N, M
        self.slices = max(1, context_slices)  # the plain hyperprior codes y as one slice
        for name, module in analysis_layers(M, N, (N, N, N), cond).items():
            setattr(self, name, module)
        self.h_s = hyper_synthesis_layers(N, M, tuple(hyper_widths or (M, M * 3 // 2)), hyper_kernel)
        self.channel_context = channel_context_layers(M, context_slices, context_width) if context_slices else None
        self.spatial_context = spatial_context_layers(M, self.slices, spatial_width) if spatial_width else None

        # gain units (Cui et al. 2021): the quality map scales the latents before quantization, so one
        # model spans the rate range from the first step; the decoder undoes the gain of the global q0
        self.gain = nn.Parameter(torch.full((M,), INITIAL_GAIN))
        self.inverse_gain = nn.Parameter(torch.full((M,), INITIAL_GAIN))

        self.g_s, self.g_s_igdn, self.g_s_mod = synthesis_layers(M, (N, N, N))

        self.entropy_bottleneck = EntropyBottleneck(N)
        self.gaussian_conditional = GaussianConditional(None)
        self._exact_h_s: ExactNetwork | None = None
        self._exact_context: dict[str, list[ExactNetwork]] = {}
        self._rounding_tables: tuple | None = None

    # -- transforms -------------------------------------------------------------------------
    def analysis_transform(self, x: torch.Tensor, quality_map: torch.Tensor, q0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return analyze(self, x, quality_map, q0)

    def hyper_analysis(self, y: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        return hyper_analyze(self, y, cond)

    def analysis(self, x: torch.Tensor, quality_map: torch.Tensor, q0: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """g_a and h_a: image and quality maps to latents y and hyper-latents z."""
        y, cond = analyze(self, x, quality_map, q0)
        return y, hyper_analyze(self, y, cond)

    def hyper_synthesis(self, z_hat: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """h_s: Gaussian scales and means of y. Float while training; exact integer arithmetic when
        coding (see exact.py), so encoder and decoder pick the same tables on any machine."""
        if self.training:
            scales, means = self.h_s(z_hat).chunk(2, dim=1)
        else:
            if self._exact_h_s is None:
                self._exact_h_s = ExactNetwork(self.h_s)
            scales, means = self._exact_h_s(z_hat).chunk(2, dim=1)
        return scales, means

    def _context_network(self, kind: str, i: int, exact: bool) -> Callable[[torch.Tensor], torch.Tensor]:
        """Network i of the `kind` context ('channel_context' or 'spatial_context'): the float one
        while training, its exact copy when coding."""
        networks = getattr(self, kind)
        if not exact:
            return networks[i]
        if kind not in self._exact_context:
            self._exact_context[kind] = [ExactNetwork(net, CONTEXT_TILE, CONTEXT_HALO, 1) for net in networks]
        return self._exact_context[kind][i]

    def slice_parameters(self, scales: torch.Tensor, means: torch.Tensor, i: int, decoded: list[torch.Tensor],
                         exact: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Scales and means of y's slice i: the hyper-synthesis's, corrected by the channel context
        from the `decoded` slices before it (ŷ), in exact arithmetic when coding."""
        size = self.M // self.slices
        scales, means = scales[:, i * size:(i + 1) * size], means[:, i * size:(i + 1) * size]
        if self.channel_context is None:
            return scales, means
        correction = self._context_network("channel_context", i, exact)(torch.cat([scales, means, *decoded], 1))
        return scales + correction[:, :size], means + correction[:, size:]

    def spatial_parameters(self, scales: torch.Tensor, means: torch.Tensor, i: int, anchor_symbols: torch.Tensor,
                           exact: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Slice i's scales and means for the second pass of the checkerboard: the anchors' as they
        were, the other positions' corrected from the anchors' decoded symbols (zero elsewhere)."""
        size = scales.shape[1]
        network = self._context_network("spatial_context", i, exact)
        correction = network(torch.cat([anchor_symbols, scales, means], 1))
        anchors = anchor_mask(scales.shape[-2:]).to(scales.device)
        return (torch.where(anchors, scales, scales + correction[:, :size]),
                torch.where(anchors, means, means + correction[:, size:]))

    def latent_parameters(self, scales: torch.Tensor, means: torch.Tensor,
                          y: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Training's scales and means of every latent of y, found slice by slice (and pass by pass)
        as the decoder finds them: each slice rounded around its means, as coded, to inform the
        next; coding runs the same loop in exact arithmetic, interleaved with the range coder."""
        if self.channel_context is None and self.spatial_context is None:
            return scales, means
        decoded, all_scales, all_means = [], [], []
        for i, y_slice in enumerate(y.chunk(self.slices, 1)):
            s, m = self.slice_parameters(scales, means, i, decoded, exact=False)
            if self.spatial_context is not None:
                anchors = anchor_mask(y_slice.shape[-2:]).to(y_slice.device)
                s, m = self.spatial_parameters(s, m, i, ste_round(y_slice - m.detach()) * anchors, exact=False)
            decoded.append(ste_round(y_slice - m.detach()) + m.detach())
            all_scales.append(s)
            all_means.append(m)
        return torch.cat(all_scales, 1), torch.cat(all_means, 1)

    def train(self, mode: bool = True) -> "QualityMapHyperprior":
        self._exact_h_s, self._exact_context = None, {}  # weights may change: rebuild the exact copies when coding next
        return super().train(mode)

    def load_state_dict(self, *args, **kwargs):
        self._exact_h_s, self._exact_context = None, {}
        return super().load_state_dict(*args, **kwargs)

    def synthesis(self, y_hat: torch.Tensor, q0: torch.Tensor) -> torch.Tensor:
        return synthesize(self, y_hat, q0)

    # -- training ---------------------------------------------------------------------------
    def forward(self, x: torch.Tensor, quality_map: torch.Tensor, q0: torch.Tensor,
                analysis: AnalysisTransform | None = None) -> ForwardOutput:
        """Mixed quantization (Minnen & Singh 2020): noise for the rate, rounding for the decoder.
        `analysis` replaces the model's own g_a and h_a (training a second encoder)."""
        y, z = self.analysis(x, quality_map, q0) if analysis is None else analysis(x, quality_map, q0)
        _, z_likelihoods = self.entropy_bottleneck(z)
        z_offset = self.entropy_bottleneck._get_medians()
        z_hat = ste_round(z - z_offset) + z_offset
        scales, means = self.latent_parameters(*self.hyper_synthesis(z_hat), y)
        _, y_likelihoods = self.gaussian_conditional(y, scales, means=means)
        y_hat = ste_round(y - means) + means
        return ForwardOutput(self.synthesis(y_hat, q0), [y_likelihoods, z_likelihoods])

    def aux_loss(self) -> torch.Tensor:
        return self.entropy_bottleneck.loss()

    # -- coding -----------------------------------------------------------------------------
    def entropy_tables_ready(self) -> bool:
        return self.entropy_bottleneck._quantized_cdf.numel() > 0

    def update_entropy_tables(self) -> None:
        """Build the CDF tables the range coder uses; call once after loading weights."""
        self.entropy_bottleneck.update(force=True, update_quantiles=True)
        self.gaussian_conditional.update_scale_table(scale_table(), force=True)
        self._rounding_tables = None

    def y_coding_tables(self) -> tuple[list, list, list]:
        """The Gaussian tables as the rANS coder takes them: CDFs, their lengths, their offsets."""
        gc = self.gaussian_conditional
        return gc._quantized_cdf.tolist(), gc._cdf_length.reshape(-1).int().tolist(), gc._offset.reshape(-1).int().tolist()

    def scale_indexes(self, scales: torch.Tensor) -> torch.Tensor:
        """Index of the coding table for each latent: the table scale nearest to its scale in the
        log domain (boundaries at geometric midpoints). CompressAI picks the next larger table
        scale instead, which always overstates the scale and cost about 1.3 % more bits here."""
        table = self.gaussian_conditional.scale_table
        scales = self.gaussian_conditional.lower_bound_scale(scales)
        boundaries = torch.sqrt(table[:-1] * table[1:]).to(scales.dtype)
        return torch.bucketize(scales, boundaries, right=False).int()

    def rd_symbols(self, residuals: torch.Tensor, indexes: torch.Tensor, multiplier: float | None = None) -> torch.Tensor:
        """The symbols the encoder writes for `residuals` (latents minus their means) coded with the
        tables `indexes` (scale_indexes): rounded for rate and distortion together with the coder's
        own tables (codec/rounding.py; `multiplier` None: the current one, 0: nearest rounding)."""
        if self._rounding_tables is None:
            gc = self.gaussian_conditional
            self._rounding_tables = (gc._offset.reshape(-1).numpy(), gc._cdf_length.reshape(-1).numpy(),
                                     code_lengths(gc._quantized_cdf.numpy()))
        return torch.from_numpy(rd_round(residuals.numpy(), indexes.numpy(), *self._rounding_tables, multiplier))

    @torch.inference_mode()
    def compress(self, x: torch.Tensor, quality_map: torch.Tensor, q0: torch.Tensor, saliency: torch.Tensor | None = None,
                 tile: int = 0, analysis: AnalysisTransform | None = None,
                 refine_steps: int = 0) -> tuple[list[bytes], float]:
        """x: 1×3×H×W uint8 pixels (or floats in [0, 1]), H and W multiples of `stride`; q0 the
        global quality the file header carries; `tile` > 0 bounds memory (see tiling.py). The
        saliency map reaches this model through the quality map only. `analysis` replaces the
        model's own g_a and h_a (a second encoder: same file format, same decoder).
        `refine_steps` > 0 searches for better latents for this image (refinement.py; untiled only).

        Returns the [y, z] streams and the estimated bits (-Σ log2 p of the coded symbols),
        which the tests compare with the real stream sizes.
        """
        encoder = self if analysis is None else analysis
        if tile:
            y, cond = tiled(lambda t, q: analyze(encoder, to_unit(t), q, q0), (x, quality_map), tile,
                            self.ANALYSIS_HALO, 1 / 16)
        else:
            y, cond = analyze(encoder, to_unit(x), quality_map, q0)
        if tile:
            (z,) = tiled(lambda t, c: (hyper_analyze(encoder, t, c),), (y, cond), self.HYPER_ANALYSIS_TILE,
                         self.HYPER_ANALYSIS_HALO, 1 / 4)
        else:
            z = hyper_analyze(encoder, y, cond)
        multiplier = None  # RD rounding as configured (rounding.py)
        if refine_steps:
            if tile:
                raise ValueError("latent refinement needs the whole image at once (no tiles)")
            from .refinement import refine_latents
            y, z, refined = refine_latents(self, to_unit(x), quality_map, q0, y, z, refine_steps)
            multiplier = 0.0 if refined else None  # the search has chosen the symbols already
        z_strings = self.entropy_bottleneck.compress(z)
        z_hat = self.entropy_bottleneck.decompress(z_strings, z.shape[-2:])
        hyper_scales, hyper_means = self.hyper_synthesis(z_hat)
        coder, tables = BufferedRansEncoder(), self.y_coding_tables()

        def encode(symbols: torch.Tensor, indexes: torch.Tensor) -> None:
            coder.encode_with_indexes(symbols.int().reshape(-1).tolist(), indexes.reshape(-1).tolist(), *tables)
        decoded, all_scales, all_means = [], [], []
        for i, y_slice in enumerate(y.chunk(self.slices, 1)):
            scales, means = self.slice_parameters(hyper_scales, hyper_means, i, decoded, exact=True)
            indexes = self.scale_indexes(scales)
            symbols = self.rd_symbols(y_slice - means, indexes, multiplier)
            if self.spatial_context is not None:  # the anchors, then the others from them
                anchors = anchor_mask(y_slice.shape[-2:])
                encode(symbols[..., anchors], indexes[..., anchors])
                scales, means = self.spatial_parameters(scales, means, i, symbols * anchors, exact=True)
                others = ~anchors  # the anchors' scales and means are unchanged
                indexes = self.scale_indexes(scales[..., others])
                symbols[..., others] = self.rd_symbols(y_slice[..., others] - means[..., others], indexes, multiplier)
                encode(symbols[..., others], indexes)
            else:
                encode(symbols, indexes)
            decoded.append(symbols + means)
            all_scales.append(scales)
            all_means.append(means)
        y_string = coder.flush()
        _, z_likelihoods = self.entropy_bottleneck(z_hat, training=False)
        est_bits = -float(z_likelihoods.log2().sum())
        for part in zip(torch.cat(decoded, 1).split(32, 1), torch.cat(all_scales, 1).split(32, 1),
                        torch.cat(all_means, 1).split(32, 1)):  # a few channels at a time
            _, y_likelihoods = self.gaussian_conditional(part[0], part[1], means=part[2], training=False)
            est_bits -= float(y_likelihoods.log2().sum())
        return [y_string, z_strings[0]], est_bits

    @torch.inference_mode()
    def decode_latents(self, strings: list[bytes], padded_shape: tuple[int, int]) -> torch.Tensor:
        """Entropy-decode the quantized latents y_hat of an image padded to `padded_shape`."""
        y_string, z_string = strings
        z_shape = (padded_shape[0] // self.stride, padded_shape[1] // self.stride)
        z_count = self.N * z_shape[0] * z_shape[1]
        z_hat = self.entropy_bottleneck.decompress([pad_stream(z_string, z_count)], z_shape)
        hyper_scales, hyper_means = self.hyper_synthesis(z_hat)
        coder, tables = RansDecoder(), self.y_coding_tables()
        coder.set_stream(pad_stream(y_string, self.M * z_shape[0] * z_shape[1] * 16))

        def decode(scales: torch.Tensor) -> torch.Tensor:
            symbols = coder.decode_stream(self.scale_indexes(scales).reshape(-1).tolist(), *tables)
            return torch.tensor(symbols, dtype=torch.float32).reshape(scales.shape)
        decoded: list[torch.Tensor] = []
        for i in range(self.slices):
            scales, means = self.slice_parameters(hyper_scales, hyper_means, i, decoded, exact=True)
            if self.spatial_context is not None:  # the anchors, then the others from them
                anchors = anchor_mask(scales.shape[-2:])
                symbols = torch.zeros_like(means)
                symbols[..., anchors] = decode(scales[..., anchors])
                scales, means = self.spatial_parameters(scales, means, i, symbols, exact=True)
                symbols[..., ~anchors] = decode(scales[..., ~anchors])
            else:
                symbols = decode(scales)
            decoded.append(symbols + means)
        return torch.cat(decoded, 1)

    @torch.inference_mode()
    def decompress(self, strings: list[bytes], padded_shape: tuple[int, int], q0: torch.Tensor, tile: int = 0,
                   synthesis: SynthesisTransform | None = None) -> torch.Tensor:
        """Inverse of `compress`: 1×3×H×W uint8 pixels; q0 is the global quality from the file header.
        `synthesis` replaces the model's own g_s (a second decoder of the same latents)."""
        g_s = self.synthesis if synthesis is None else synthesis
        y_hat = self.decode_latents(strings, padded_shape)
        if tile:
            (x_hat,) = tiled(lambda t: (to_pixels(g_s(t, q0)),), (y_hat,), tile // 16, self.SYNTHESIS_HALO // 16, 16)
            return x_hat
        return to_pixels(g_s(y_hat, q0))
