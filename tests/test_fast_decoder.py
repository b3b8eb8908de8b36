"""The fast decoder: a narrower synthesis trained on a frozen model's latents that reads the
model's files unchanged."""
from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import torch
import yaml

from salcodec.codec import codec
from salcodec.errors import SalcodecError
from salcodec.models.registry import MODEL_PATH_ENV, load_model
from salcodec.train.fast_decoder import narrowed_synthesis
from tests.conftest import DATA, TINY


def test_narrowing_to_the_full_width_keeps_the_synthesis_exactly(rng):
    model, _ = load_model(TINY)
    y_hat = torch.from_numpy(np.round(rng.normal(0, 3, (2, model.M, 4, 5))).astype(np.float32))
    q0 = torch.tensor([0.1, 0.8])
    with torch.no_grad():
        assert torch.equal(narrowed_synthesis(model, model.N).eval()(y_hat, q0), model.synthesis(y_hat, q0))
        narrow = narrowed_synthesis(model, model.N // 2)
        assert narrow.g_s[1].weight.shape == (model.N // 2, model.N // 2, 5, 5)
        assert narrow(y_hat, q0).shape == (2, 3, 64, 80)
        tapered = narrowed_synthesis(model, (8, 6, 4))  # transposed convolutions' weights: in × out × k × k
        assert [tuple(layer.weight.shape[:2]) for layer in tapered.g_s] == [(model.M, 8), (8, 6), (6, 4), (4, 3)]
        assert [igdn.gamma.shape[0] for igdn in tapered.g_s_igdn] == [8, 6, 4]
        assert tapered(y_hat, q0).shape == (2, 3, 64, 80)


@pytest.fixture
def fast_run(tmp_path, training_photos, monkeypatch):
    """A fast decoder for the tiny model, trained by the training command for a few steps."""
    cfg = {
        "name": "fast-test", "out_dir": str(tmp_path / "run"),
        "model": {"family": "fast-decoder", "base": TINY, "widths": [8, 6, 4]},  # narrowest at the top
        "data": {"photos": [str(training_photos)], "heldout": str(DATA / "train" / "bsds500" / "test"), "max_side": 256},
        "train": {"steps": 4, "batch": 2, "crop": 64, "cache_crops": 6, "q0_range": [0.0, 1.0], "lr": [[0, 1e-3]],
                  "seed": 0, "log_every": 2, "monitor_every": 2, "monitor_images": 1, "monitor_side": 64,
                  "checkpoint_every": 2},
    }
    config = tmp_path / "fast.yaml"
    config.write_text(yaml.safe_dump(cfg))
    from salcodec.cli import main
    assert main(["train", "--config", str(config), "--max-steps", "2"]) == 0
    assert not (tmp_path / "run" / "fast").exists()  # exported only when the run is complete
    assert main(["train", "--config", str(config)]) == 0  # resumes from step 2, reusing the latent cache
    monkeypatch.setenv(MODEL_PATH_ENV, f"{tmp_path / 'run'}{os.pathsep}{os.environ[MODEL_PATH_ENV]}")
    return tmp_path / "run"


def test_fast_decoder_trains_exports_and_reads_the_models_files(fast_run, kodak_crop, tmp_path):
    with (fast_run / "monitor.csv").open() as fh:
        assert [int(r["step"]) for r in csv.DictReader(fh)] == [0, 2, 4]
    base_scores = json.loads((fast_run / "monitor_base.json").read_text())
    assert set(base_scores) == {"train_psnr", "heldout_psnr", "train_hf_ratio", "heldout_hf_ratio"}
    assert all(np.isfinite(v) and v > 0 for v in base_scores.values())
    blob = torch.load(fast_run / "fast" / f"{TINY}.pt", weights_only=True)
    assert blob["kind"] == "fast-decoder" and blob["base_model"] == TINY
    weight = blob["state_dict"]["g_s.1.weight"]
    assert weight.dtype == torch.float16 and weight.shape[:2] == (8, 6)

    data = codec.encode(kodak_crop, 40, model_name=TINY).data
    mse, fast = codec.decode(data), codec.decode(data, decoder="fast")
    assert fast.shape == mse.shape == kodak_crop.shape and fast.dtype == np.uint8
    assert not np.array_equal(fast, mse)
    assert np.array_equal(fast, codec.decode(data, decoder="fast"))

    from salcodec.cli import main
    src = tmp_path / "a.sgc"
    src.write_bytes(data)
    assert main(["decompress", str(src), "-o", str(tmp_path / "fast.png"), "--decoder", "fast"]) == 0
    assert (tmp_path / "fast.png").is_file()


def test_a_model_without_a_fast_decoder_says_so(kodak_crop):
    data = codec.encode(kodak_crop, 40, model_name=TINY).data
    with pytest.raises(SalcodecError, match="no fast decoder is installed for model 'tiny'"):
        codec.decode(data, decoder="fast")


def test_eval_reads_the_fast_decoder_spec():
    from salcodec.eval.run import parse_entries
    (entry,) = parse_entries(["default-v4@fast"], [], "none")
    assert (entry.label, entry.decoder) == ("default-v4@fast:none", "fast")
