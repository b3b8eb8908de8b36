"""A model whose hyper-synthesis alone is retrained for rate: narrower h_s, same latents, the
base model's second decoders and encoders serve it."""
from __future__ import annotations

import copy
import csv
import json
import os

import numpy as np
import pytest
import torch
import yaml

from salcodec import models, runtime
from salcodec.codec import codec
from salcodec.errors import SalcodecError
from salcodec.models.hyperprior import QualityMapHyperprior, SynthesisTransform
from salcodec.models.registry import MODEL_PATH_ENV, export_weights, load_model, load_weights_file
from salcodec.models.transforms import export_decoder
from salcodec.train.data import CropSampler, load_photo_folder
from salcodec.train.hyper_synthesis import hyper_cache, narrowed_hyper_synthesis
from tests.conftest import DATA, TINY


def test_narrowing_to_the_same_shape_keeps_the_hyper_synthesis_exactly(rng):
    base, _ = load_model(TINY)
    same = QualityMapHyperprior(N=base.N, M=base.M).eval()
    narrow = QualityMapHyperprior(N=base.N, M=base.M, hyper_widths=(base.M // 2, base.M), hyper_kernel=1).eval()
    narrowed_hyper_synthesis(base, same)
    narrowed_hyper_synthesis(base, narrow)
    z_hat = torch.from_numpy(np.round(rng.normal(0, 2, (1, base.N, 3, 4))).astype(np.float32))
    with torch.no_grad():
        assert torch.equal(same.h_s(z_hat), base.h_s(z_hat))
        assert narrow.h_s[2].weight.shape == (base.M // 2, base.M, 5, 5)  # transposed: in × out
        assert narrow.h_s[4].weight.shape == (2 * base.M, base.M, 1, 1)
        assert narrow.h_s(z_hat).shape == (1, 2 * base.M, 12, 16)


@pytest.fixture
def lite_run(tmp_path, training_photos, monkeypatch):
    """The tiny model with a narrower h_s, trained by the training command for a few steps, and
    registered as sharing the tiny model's second transforms."""
    # the tiny model's latents are near zero (random weights): louder ones give y a rate to learn
    base, _ = load_model(TINY)
    loud = copy.deepcopy(base)
    with torch.no_grad():
        loud.g_a[3].weight.mul_(40)
    (tmp_path / "models").mkdir()
    export_weights(loud, "quality-map-hyperprior", {"N": base.N, "M": base.M}, tmp_path / "models" / "tiny-loud.pt")
    monkeypatch.setenv(MODEL_PATH_ENV, f"{tmp_path / 'models'}{os.pathsep}{os.environ[MODEL_PATH_ENV]}")
    cfg = {
        "name": "tiny-lite", "out_dir": str(tmp_path / "run"),
        "model": {"family": "hyper-synthesis", "base": "tiny-loud", "hyper_widths": [12, 24], "hyper_kernel": 1},
        "data": {"photos": [str(training_photos)], "heldout": str(DATA / "train" / "bsds500" / "test"), "max_side": 256},
        "train": {"steps": 30, "batch": 4, "crop": 128, "cache_crops": 16, "lr": [[0, 3e-3]], "seed": 0,
                  "log_every": 15, "monitor_every": 15, "monitor_crop": 128, "monitor_crops": 4, "checkpoint_every": 15},
    }
    config = tmp_path / "lite.yaml"
    config.write_text(yaml.safe_dump(cfg))
    from salcodec.cli import main
    assert main(["train", "--config", str(config), "--max-steps", "15"]) == 0
    assert not (tmp_path / "run" / "tiny-lite.pt").exists()  # exported only when the run is complete
    assert main(["train", "--config", str(config)]) == 0  # resumes from step 15, reusing the caches
    monkeypatch.setenv(MODEL_PATH_ENV, f"{tmp_path / 'run'}{os.pathsep}{os.environ[MODEL_PATH_ENV]}")
    monkeypatch.setitem(models.SHARES_TRANSFORMS_OF, "tiny-lite", "tiny-loud")
    return tmp_path / "run"


def test_hyper_synthesis_trains_for_rate_and_keeps_everything_else(lite_run, kodak_crop):
    with (lite_run / "monitor.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [int(r["step"]) for r in rows] == [0, 15, 30]
    bpp = [float(r["heldout_bpp_y"]) for r in rows]
    assert bpp[-1] < bpp[0]  # the narrowed start codes badly; training lowers the rate
    base_bpp = json.loads((lite_run / "monitor_base.json").read_text())["heldout_bpp_y"]
    assert 0 < base_bpp < bpp[0]
    with (lite_run / "log.csv").open() as fh:
        assert "bpp" in next(csv.reader(fh))
    base, _ = load_model("tiny-loud")
    lite, _ = load_model("tiny-lite")
    assert lite.h_s[4].weight.shape == (2 * base.M, 24, 1, 1)
    base_state, lite_state = base.state_dict(), lite.state_dict()
    assert {k for k in lite_state if not k.startswith("h_s.")} == {k for k in base_state if not k.startswith("h_s.")}
    assert all(torch.equal(v, base_state[k]) for k, v in lite_state.items() if not k.startswith("h_s."))

    data = codec.encode(kodak_crop, 50, model_name="tiny-lite").data
    decoded = codec.decode(data)
    assert decoded.shape == kodak_crop.shape
    assert np.abs(decoded.astype(int) - runtime.decode(data, engine="onnx")).max() <= 1  # the narrow h_s exports


def test_the_base_models_second_decoder_serves_the_retrained_model(lite_run, kodak_crop, monkeypatch):
    base, digest = load_model("tiny-loud")
    torch.manual_seed(3)
    decoder = SynthesisTransform(base.M, 8)
    export_decoder(decoder, "fast", "tiny-loud", digest, lite_run / "fast" / "tiny-loud.pt")
    data = codec.encode(kodak_crop, 50, model_name="tiny-lite").data
    fast, mse = codec.decode(data, decoder="fast"), codec.decode(data)
    assert fast.shape == mse.shape and not np.array_equal(fast, mse)

    # a model that differs from the base outside h_s must not borrow its transforms
    other = lite_run / "other"
    other.mkdir()
    blob = torch.load(lite_run / "tiny-lite.pt", weights_only=True)
    assert blob["base_model"] == "tiny-loud" and "g_s.0.bias" not in blob["state_dict"]  # stored as differences
    blob["state_dict"]["g_s.0.bias"] = base.state_dict()["g_s.0.bias"].half() + 1
    torch.save(blob, other / "tiny-other.pt")
    monkeypatch.setenv(MODEL_PATH_ENV, f"{other}{os.pathsep}{os.environ[MODEL_PATH_ENV]}")
    monkeypatch.setitem(models.SHARES_TRANSFORMS_OF, "tiny-other", "tiny-loud")
    data = codec.encode(kodak_crop, 50, model_name="tiny-other").data
    with pytest.raises(SalcodecError, match="differ outside the hyper-synthesis"):
        codec.decode(data, decoder="fast")


def test_a_context_run_starts_from_the_model_it_names_and_trains_its_parts(lite_run, tmp_path):
    """`model.init` starts the entropy networks from another model of the same base (here the lite
    h_s, which does not train), and `train.parts` trains the checkerboard context from zero."""
    cfg = yaml.safe_load((tmp_path / "lite.yaml").read_text())
    cfg["name"], cfg["out_dir"] = "tiny-cb", str(tmp_path / "cb-run")
    cfg["model"].update(init="tiny-lite", context_slices=2, context_width=4, spatial_width=4)
    cfg["train"].update(steps=3, parts=["spatial_context"], monitor_every=3, checkpoint_every=3)
    config = tmp_path / "cb.yaml"
    config.write_text(yaml.safe_dump(cfg))
    from salcodec.cli import main
    assert main(["train", "--config", str(config)]) == 0
    lite, _ = load_model("tiny-lite")
    model, _ = load_weights_file(tmp_path / "cb-run" / "tiny-cb.pt")
    assert all(torch.equal(v, lite.state_dict()[k]) for k, v in model.state_dict().items() if k.startswith("h_s."))
    assert model.spatial_context[1][-1].weight.abs().sum() > 0  # started at zero
    assert all(float(net[-1].weight.abs().sum()) == 0 for net in model.channel_context)  # not in parts


def test_the_cache_grows_when_asked_for_more_crops(tmp_path, training_photos):
    base, _ = load_model(TINY)
    photos = load_photo_folder(training_photos, 256)
    path = tmp_path / "cache.pt"
    small = hyper_cache(path, base, [base.analysis], CropSampler(photos, 64, 0), 3, 0)
    grown = hyper_cache(path, base, [base.analysis], CropSampler(photos, 64, 0), 5, 0)
    assert small.y.shape == (3, base.M, 4, 4) and small.z_hat.shape == (3, base.N, 1, 1)
    assert grown.y.shape[0] == 5 and torch.equal(grown.y[:3], small.y)
    assert not torch.equal(grown.y[3:], small.y[:2])  # new crops, not the first ones again
    assert torch.equal(hyper_cache(path, base, [base.analysis], CropSampler(photos, 64, 0), 4, 0).y, grown.y)
