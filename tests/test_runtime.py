"""The onnx coding engine (salcodec/runtime): same format, same tables, no torch."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from salcodec import api, models, runtime
from salcodec.codec import codec
from salcodec.codec.rounding import rd_multiplier
from salcodec.errors import SalcodecError
from salcodec.models import layers
from salcodec.models.registry import load_model
from salcodec.runtime import coder
from tests.conftest import KODAK, TINY


@pytest.mark.parametrize("model_id, shape", [(TINY, (7, 9)), ("default-v4", (7, 9)), ("default-v4-lite", (7, 9)),
                                             ("default-v4-lite", (23, 41))])
def test_numpy_hyper_synthesis_gives_the_torch_engines_floats_bit_for_bit(model_id, shape, rng):
    """Also in tiles of hyper-latents (23×41 is above both engines' h_s tiling size)."""
    model, _ = load_model(model_id)
    tables = coder._tables(model_id)
    z_hat = torch.from_numpy(np.round(rng.normal(0, 4, (1, model.N, *shape))).astype(np.float32))
    scales, means = model.hyper_synthesis(z_hat)
    np_scales, np_means = tables.scales_and_means(z_hat[0].numpy())
    assert np.array_equal(np_scales, scales[0].numpy()) and np.array_equal(np_means, means[0].numpy())
    assert np.array_equal(tables.scale_indexes(np_scales), model.scale_indexes(scales)[0].numpy())


def test_table_choice_from_the_log_domain_is_exactly_the_binary_searchs(rng):
    """At, just above and just below every boundary, below the scale bound, at the extremes, and
    over the whole range of scales: the same indexes as searching the boundaries."""
    tables = coder._tables(TINY)
    b = tables.boundaries
    edges = [b, np.nextafter(b, np.float32(np.inf)), np.nextafter(b, np.float32(0)),
             np.array([-5, 0, 1e-30, tables.scale_bound, 1e30, np.finfo(np.float32).max, np.inf])]
    scales = np.concatenate([*edges, np.exp(rng.uniform(-5, 7, 200_000))]).astype(np.float32)
    expected = np.searchsorted(b, np.maximum(scales, tables.scale_bound), side="left")
    assert np.array_equal(tables.scale_indexes(scales), expected)


def test_engines_read_each_others_files(kodak_crop):
    """A file of either engine decodes on both; the transforms' last float bits may move a pixel by one level."""
    sal = api.predict_saliency(kodak_crop, engine="onnx")
    by_onnx = api.compress(kodak_crop, 40, sal, engine="onnx")
    by_torch = api.compress(kodak_crop, 40, sal, engine="torch")
    assert abs(len(by_onnx) - len(by_torch)) <= 0.01 * len(by_torch)
    for data in (by_onnx, by_torch):
        a, b = api.decompress(data, engine="onnx"), api.decompress(data, engine="torch")
        diff = np.abs(a.astype(int) - b.astype(int))
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3
    torch_sal = api.predict_saliency(kodak_crop, engine="torch")
    assert np.abs(sal - torch_sal).max() < 0.05  # the two resizes differ a little; the maps agree


@pytest.mark.parametrize("engine", ["onnx", "torch"])
def test_both_engines_round_for_rate_and_agree_on_the_choices(kodak_crop, engine):
    """RD rounding (codec/rounding.py) on either engine: smaller files than nearest rounding at the
    same quality (about 6 % at quality 50 on Kodak), and files of the two engines as close as before."""
    with rd_multiplier(0):
        nearest = api.compress(kodak_crop, 50, "none", engine=engine)
    rd = api.compress(kodak_crop, 50, "none", engine=engine)
    assert len(rd) < 0.98 * len(nearest)
    other = api.compress(kodak_crop, 50, "none", engine="torch" if engine == "onnx" else "onnx")
    assert abs(len(rd) - len(other)) <= 0.01 * len(rd)


def test_onnx_engine_gives_the_same_bytes_and_pixels_whatever_the_thread_count(kodak_crop):
    results = []
    try:
        for threads in (1, 2):
            coder.set_threads(threads)
            data = api.compress(kodak_crop, 60, "auto", engine="onnx")
            results.append((data, api.decompress(data, "gan", engine="onnx")))
    finally:
        coder.set_threads(None)
    assert results[0][0] == results[1][0] and np.array_equal(results[0][1], results[1][1])


def test_compress_and_decompress_commands_never_import_torch(tmp_path):
    image, sgc, png = KODAK / "kodim23.png", tmp_path / "a.sgc", tmp_path / "a.png"
    script = ("import sys; from salcodec.cli import main; "
              f"rc = main(['compress', {str(image)!r}, '-o', {str(sgc)!r}]) "
              f"or main(['decompress', {str(sgc)!r}, '-o', {str(png)!r}, '--reference', {str(image)!r}]); "
              "print(rc, 'torch' in sys.modules)")
    api.compress(np.zeros((64, 64, 3), np.uint8), engine="onnx")  # the cache is filled beforehand, as after a first run
    api.decompress(api.compress(np.zeros((64, 64, 3), np.uint8), engine="onnx"), engine="onnx")
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert out.stdout.split()[-2:] == ["0", "False"], out.stderr
    assert png.is_file()


def test_auto_falls_back_to_torch_where_onnx_does_not_apply(kodak_crop, tmp_path, monkeypatch):
    from salcodec.models.registry import build_model, export_weights
    torch.manual_seed(0)
    export_weights(build_model("bls2017", N=16, M=24).eval(), "bls2017", {"N": 16, "M": 24}, tmp_path / "tiny-bls.pt")
    monkeypatch.setenv(models.MODEL_PATH_ENV, f"{tmp_path}:{models.weights_dirs()[0]}")
    with pytest.raises(SalcodecError, match="use --engine torch"):
        api.compress(kodak_crop, 50, "none", model="tiny-bls", engine="onnx")
    data = api.compress(kodak_crop, 50, "none", model="tiny-bls")  # auto: the torch engine codes it
    with pytest.raises(SalcodecError, match="use --engine torch"):
        api.decompress(data, engine="onnx")
    assert api.decompress(data).shape == kodak_crop.shape


def test_tiled_images_code_on_both_engines_alike(monkeypatch):
    """Above the tiling size both engines code in tiles of the same geometry (here 256-px tiles of
    a whole Kodak image); each reads the other's files, pixels equal but for float rounding."""
    from PIL import Image
    image = np.asarray(Image.open(KODAK / "kodim23.png").convert("RGB"))
    for module in (coder, codec):
        monkeypatch.setattr(module, "TILE_ABOVE_PIXELS", 64 * 64)
    monkeypatch.setattr(coder, "TILE_SIDE", 256)
    monkeypatch.setattr(codec, "TILE_SIDE", 256)
    files = {engine: api.compress(image, 50, "none", model=TINY, engine=engine) for engine in ("onnx", "torch")}
    assert codec.bitstream.unpack(files["onnx"]).header.tile == 256
    assert abs(len(files["onnx"]) - len(files["torch"])) <= 0.01 * len(files["torch"])
    for data in files.values():
        a, b = api.decompress(data, engine="onnx"), api.decompress(data, engine="torch")
        diff = np.abs(a.astype(int) - b.astype(int))
        assert a.shape == image.shape and diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_unwritable_cache_falls_back_under_auto(kodak_crop, tmp_path, monkeypatch):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    monkeypatch.setenv(runtime.bundle.CACHE_ENV, str(blocker / "cache"))
    with pytest.raises(SalcodecError, match="not writable"):
        api.compress(kodak_crop, 50, "none", model=TINY, engine="onnx")
    data = api.compress(kodak_crop, 50, "none", model=TINY)
    assert api.decompress(data).shape == kodak_crop.shape


def test_a_damaged_cache_part_is_removed_and_rebuilt(kodak_crop):
    api.compress(kodak_crop, 50, "none", model=TINY, engine="onnx")
    tables = runtime.bundle.part_path("tables", [models.model_file(TINY)], ".npz")
    graph = runtime.bundle.part_path("analysis-default", [models.model_file(TINY)], ".onnx")
    for part in (tables, graph):
        coder._load_tables.cache_clear()
        coder._session.cache_clear()
        part.write_bytes(b"not what it was")
        with pytest.raises(SalcodecError, match="could not be read"):
            api.compress(kodak_crop, 50, "none", model=TINY, engine="onnx")
        assert not part.exists()
        api.compress(kodak_crop, 50, "none", model=TINY, engine="onnx")  # the next call rebuilds it
        assert part.is_file()


def test_a_synthesis_driven_to_nan_decodes_to_black_as_on_torch(kodak_crop, monkeypatch):
    """Forged latents can overflow the synthesis (fuzz/run.py found it); NaN pixels become 0 on both engines."""
    data = api.compress(kodak_crop, 50, "none", model=TINY, engine="onnx")

    class NanSynthesis:
        def run(self, _, feeds):
            h, w = feeds["y_hat"].shape[-2:]
            return [np.full((1, 3, 16 * h, 16 * w), np.nan, np.float32)]
    monkeypatch.setattr(coder, "_synthesis", lambda *_: NanSynthesis())
    pixels = api.decompress(data, engine="onnx")
    assert pixels.shape == kodak_crop.shape and not pixels.any()
    x_hat = torch.full((1, 3, 2, 2), float("nan"))
    assert not layers.to_pixels(x_hat).any()  # what the torch engine gives for the same NaNs


def test_unknown_engine_is_a_clear_error(kodak_crop):
    with pytest.raises(SalcodecError, match="unknown engine"):
        api.compress(kodak_crop, engine="tensorrt")


def test_synthesis_graph_runs_each_phase_with_only_its_taps(tmp_path, rng):
    """The export's rewrite (_skip_zero_taps) splits every wide sub-pixel layer into its phases'
    own convolutions (3×3, 3×2, 2×3 and 2×2 for 5×5 stride 2) and leaves the output as it was."""
    import onnx
    import onnxruntime as ort

    from salcodec.runtime import export
    whole, split = tmp_path / "whole.onnx", tmp_path / "split.onnx"
    export.export_synthesis(TINY, "mse", split)  # as shipped: the tiny layers are too narrow to split
    whole.write_bytes(split.read_bytes())
    export._skip_zero_taps(split, min_channels=1)
    shapes = {tuple(t.dims[-2:]) for t in onnx.load(str(split)).graph.initializer if t.name.endswith("_w")}
    before = sum(n.op_type == "Conv" for n in onnx.load(str(whole)).graph.node)
    assert sum(n.op_type == "Conv" for n in onnx.load(str(split)).graph.node) == before + 4 * 3
    assert shapes == {(2, 2), (2, 3), (3, 2), (3, 3)}
    feeds = {"y_hat": np.round(rng.normal(0, 3, (1, 24, 5, 7))).astype(np.float32), "q0": np.array([0.4], np.float32)}
    outs = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, feeds)[0] for p in (whole, split)]
    assert outs[0].shape == (1, 3, 80, 112)
    np.testing.assert_allclose(outs[1], outs[0], rtol=0, atol=1e-6)


def test_graphs_square_by_multiplying_with_the_same_output(tmp_path, monkeypatch, rng):
    """The export's rewrite (_square_by_multiplying) leaves no Pow (GDN's square lacks ONNX
    Runtime's blocked layout; Mul has it), and the analysis computes the same numbers."""
    import onnx
    import onnxruntime as ort

    from salcodec.runtime import export
    squared, powered = tmp_path / "squared.onnx", tmp_path / "powered.onnx"
    export.export_analysis(TINY, "default", squared)
    monkeypatch.setattr(export, "_square_by_multiplying", lambda path: None)
    export.export_analysis(TINY, "default", powered)
    ops = [[n.op_type for n in onnx.load(str(p)).graph.node] for p in (squared, powered)]
    assert "Pow" not in ops[0] and ops[1].count("Pow") >= 3  # one square per GDN at least
    x = rng.random((1, 3, 64, 96), dtype=np.float32)
    feeds = {"x": x, "quality_map": np.full((1, 1, 64, 96), 0.7, np.float32), "q0": np.array([0.7], np.float32)}
    outs = [ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]).run(None, feeds) for p in (squared, powered)]
    for new, old in zip(*outs):
        np.testing.assert_allclose(new, old, rtol=1e-6, atol=1e-6)
