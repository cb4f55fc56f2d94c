"""Label transfer by patch features (the paper's affordance transfer), backend side.

DINOv2 weights cannot be downloaded here, so the DINOv2 path runs on tiny randomly
initialised models written with `save_pretrained` (safetensors), which exercise the same
loading, token handling and transfer code as the real checkpoints. Known answers come from
synthetic features and from `rgb-patches`, the weight-free colour feature, on the bundled
fruit_drops splat rendered with one colour per hand label.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from scenes import SAMPLE, SAMPLE_DIR, fruit_labels

from masksplat_blender.backend import features
from masksplat_blender.backend.features import (
    ModelUnavailable,
    load_feature_model,
    patch_features,
    patch_labels,
    transfer_labels,
    upsample_labels,
)
from masksplat_blender.client import BackendError, download_model, render_views
from masksplat_blender.client import transfer_labels as client_transfer
from masksplat_blender.core.orbit import orbit_cameras
from masksplat_blender.core.splat_io import read_splats

transformers = pytest.importorskip("transformers")
C0 = 0.28209479177387814
TINY = {"hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "patch_size": 14, "image_size": 224}


def _save(model, folder):
    model.save_pretrained(folder)  # safetensors: what MaskSplat loads
    return folder


@pytest.fixture(scope="module")
def tiny_dino(tmp_path_factory):
    torch.manual_seed(0)
    return _save(transformers.Dinov2Model(transformers.Dinov2Config(**TINY)), tmp_path_factory.mktemp("dinov2-tiny"))


@pytest.fixture(scope="module")
def tiny_registers(tmp_path_factory):
    torch.manual_seed(1)
    config = transformers.Dinov2WithRegistersConfig(**TINY, num_register_tokens=4)
    return _save(transformers.Dinov2WithRegistersModel(config), tmp_path_factory.mktemp("dinov2-reg-tiny"))


def _image(h=100, w=150, seed=0):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


# ---------------------------------------------------------------- loading models


def test_folder_model_gives_unit_patch_features(tiny_dino):
    model = load_feature_model(str(tiny_dino))
    assert model.num_register_tokens == 0 and model.patch_size == 14 and model.device == "cpu"
    assert load_feature_model(str(tiny_dino)) is model, "the warm backend keeps loaded models"
    feats = patch_features(model, _image(), 224)
    assert feats.shape == (16, 16, 32) and feats.dtype == np.float32
    assert np.allclose(np.linalg.norm(feats, axis=-1), 1, atol=1e-5)
    assert patch_features(model, _image(), 448).shape == (32, 32, 32)
    assert np.array_equal(patch_features(model.module, _image(), 224), feats), "a bare transformers module works too"
    with pytest.raises(ValueError, match="multiple of the patch size"):
        patch_features(model, _image(), 230)


def test_register_tokens_are_dropped(tiny_registers):
    model = load_feature_model(str(tiny_registers))
    assert model.num_register_tokens == 4
    image = _image()
    feats = patch_features(model, image, 224)
    assert feats.shape == (16, 16, 32)
    # The same tokens, taken by hand: CLS, 4 registers, then 16 x 16 patches in row order.
    pixels = torch.nn.functional.interpolate(torch.from_numpy(image).permute(2, 0, 1)[None].float() / 255, size=(224, 224),
                                             mode="bilinear", align_corners=False, antialias=True).clamp(0, 1)  # fmt: skip
    pixels = (pixels - torch.tensor(features.IMAGENET_MEAN).view(1, 3, 1, 1)) / torch.tensor(features.IMAGENET_STD).view(1, 3, 1, 1)
    with torch.no_grad():
        tokens = model.module(pixel_values=pixels).last_hidden_state[0]
    assert tokens.shape[0] == 1 + 4 + 256
    expected = torch.nn.functional.normalize(tokens[5:], dim=-1).reshape(16, 16, 32).numpy()
    assert np.allclose(feats, expected, atol=1e-5)


def test_pickle_only_folder_is_refused(tmp_path, tiny_dino):
    folder = tmp_path / "pickled"
    folder.mkdir()
    shutil.copy(tiny_dino / "config.json", folder / "config.json")
    model = transformers.Dinov2Model(transformers.Dinov2Config(**TINY))
    torch.save(model.state_dict(), folder / "pytorch_model.bin")  # written, never loaded
    with pytest.raises(ModelUnavailable, match="only pickled PyTorch weights") as err:
        load_feature_model(str(folder))
    assert "safetensors" in str(err.value)


def test_missing_models_say_how_to_get_them(tmp_path):
    for name in (str(tmp_path / "nowhere"), "facebook/dinov2-small", ""):
        with pytest.raises(ModelUnavailable) as err:
            load_feature_model(name, cache_dir=str(tmp_path / "empty-cache"))
        message = str(err.value)
        assert "hf download" in message and "--local-dir DIR" in message and "Feature Model" in message, message
    empty = tmp_path / "config-only"
    empty.mkdir()
    (empty / "config.json").write_text("{}")
    with pytest.raises(ModelUnavailable, match="no model.safetensors"):
        load_feature_model(str(empty))


def _fake_hub_cache(cache, folder, repo="tiny/dino", files=("config.json", "model.safetensors")):
    """The Hugging Face cache layout (refs/main -> snapshots/<commit>/files), built offline."""
    root = cache / f"models--{repo.replace('/', '--')}"
    snapshot = root / "snapshots" / ("0" * 40)
    snapshot.mkdir(parents=True)
    for name in files:
        shutil.copy(folder / name, snapshot / name)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text("0" * 40)


def test_hub_id_is_looked_up_in_the_local_cache_only(tmp_path, tiny_dino):
    _fake_hub_cache(tmp_path / "cache", tiny_dino)
    model = load_feature_model("tiny/dino", cache_dir=str(tmp_path / "cache"))
    assert patch_features(model, _image(), 224).shape == (16, 16, 32)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(tiny_dino / "config.json", pickled / "config.json")
    (pickled / "pytorch_model.bin").write_bytes(b"not loaded")
    _fake_hub_cache(tmp_path / "cache2", pickled, files=("config.json", "pytorch_model.bin"))
    with pytest.raises(ModelUnavailable, match="only pickled"):
        load_feature_model("tiny/dino", cache_dir=str(tmp_path / "cache2"))


def test_a_model_that_is_not_dinov2_is_refused(tmp_path):
    config = transformers.ViTConfig(hidden_size=32, num_hidden_layers=1, num_attention_heads=2, intermediate_size=64, image_size=28, patch_size=14)
    transformers.ViTModel(config).save_pretrained(tmp_path)
    with pytest.raises(ModelUnavailable, match="needs DINOv2"):
        load_feature_model(str(tmp_path))


# ---------------------------------------------------------------- rgb-patches, the known-answer features


def test_rgb_patches_are_position_free_colour_histograms():
    model = load_feature_model("rgb-patches")
    assert model.module is None
    image = np.zeros((56, 56, 3), np.uint8)
    image[:28, :28] = (255, 0, 0)
    image[28:, 28:] = (255, 0, 0)
    image[:28, 28:] = (0, 0, 255)
    feats = patch_features(model, image, 56)
    assert feats.shape == (4, 4, 3 * features.HISTOGRAM_BINS)
    assert np.allclose(np.linalg.norm(feats, axis=-1), 1, atol=1e-6)
    assert np.allclose(feats[0, 0], feats[3, 3]), "the same colour anywhere gives the same feature"
    assert feats[0, 0] @ feats[0, 3] < 0.75, "different colours give different features"
    # Linear binning keeps the mean: the histogram centroid of a flat patch is its colour.
    flat = np.full((14, 14, 3), (64, 128, 200), np.uint8)
    hist = features._rgb_patch_features(features._resize(flat, 14), 14)[0, 0].reshape(3, -1).numpy()
    centres = np.linspace(0, 1, features.HISTOGRAM_BINS)
    assert np.allclose(hist @ centres, np.array([64, 128, 200]) / 255, atol=1e-6)


# ---------------------------------------------------------------- transfer and upsampling


def _unit(shape, seed):
    f = np.random.default_rng(seed).normal(size=shape).astype(np.float32)
    return f / np.linalg.norm(f, axis=-1, keepdims=True)


def test_identical_features_reproduce_the_labels():
    feats = _unit((12, 10, 16), 0)
    labels = np.random.default_rng(1).integers(0, 5, (12, 10))
    scores = transfer_labels([feats], [labels], feats, 5, k=1)
    assert scores.shape == (12, 10, 5) and set(np.unique(scores)) == {0.0, 1.0}
    assert np.array_equal(scores.argmax(-1), labels)
    # Pixel-level labels: each patch takes the majority of its pixels.
    pixels = np.kron(labels, np.ones((4, 4), int))
    pixels[0, 0] = (labels[0, 0] + 1) % 5  # a minority pixel does not change the patch
    assert np.array_equal(patch_labels(pixels, 12, 10, 5), labels)
    assert np.array_equal(transfer_labels([feats], [pixels], feats, 5, k=1).argmax(-1), labels)


def test_k_nearest_majority_and_scores():
    # One target patch; seven source patches at decreasing similarity with labels 1 1 2 1 2 | 3 3.
    target = np.array([[[1.0, 0.0]]], np.float32)
    angles = np.array([0.1, 0.2, 0.3, 0.4, 0.5, 1.2, 1.3])
    source = np.stack([np.cos(angles), np.sin(angles)], -1).astype(np.float32)[None]  # [1, 7, 2]
    labels = np.array([[1, 1, 2, 1, 2, 3, 3]])
    scores = transfer_labels([source], [labels], target, 4, k=5)
    assert np.allclose(scores[0, 0], [0, 0.6, 0.4, 0])
    assert np.allclose(transfer_labels([source], [labels], target, 4, k=7)[0, 0], [0, 3 / 7, 2 / 7, 2 / 7])
    assert np.allclose(transfer_labels([source], [labels], target, 4, k=99)[0, 0], [0, 3 / 7, 2 / 7, 2 / 7]), "k is capped"
    # Label 0 is a label like any other; sources are pooled.
    scores = transfer_labels([source[:, :2], source[:, 2:]], [np.zeros((1, 2), int), labels[:, 2:]], target, 4, k=3)
    assert np.allclose(scores[0, 0], [2 / 3, 0, 1 / 3, 0])


def test_similarity_is_chunked(monkeypatch):
    feats = _unit((20, 20, 8), 3)
    labels = np.random.default_rng(4).integers(0, 3, (20, 20))
    whole = transfer_labels([feats], [labels], feats[::-1], 3, k=5)
    monkeypatch.setattr(features, "SIMILARITY_CHUNK_BYTES", 4 * 400 * 7)  # 7 target rows per block
    assert np.array_equal(transfer_labels([feats], [labels], feats[::-1], 3, k=5), whole)


def test_upsampling_matches_torch_bilinear_and_is_banded(monkeypatch):
    scores = np.random.default_rng(5).random((16, 12, 6)).astype(np.float32)
    ref = torch.nn.functional.interpolate(torch.from_numpy(scores).permute(2, 0, 1)[None], size=(97, 61),
                                          mode="bilinear", align_corners=False)[0].argmax(0).numpy()  # fmt: skip
    out = upsample_labels(scores, 97, 61)
    assert out.dtype == np.int32 and out.shape == (97, 61)
    assert (out == ref).mean() > 0.999
    monkeypatch.setattr(features, "UPSAMPLE_BAND_BYTES", 4 * 61 * 6 * 5)  # 5 rows per band
    assert np.array_equal(upsample_labels(scores, 97, 61), out)
    assert np.array_equal(upsample_labels(np.eye(3, dtype=np.float32)[[[0, 1], [2, 0]]], 4, 4),
                          [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 0, 0], [2, 2, 0, 0]])  # fmt: skip


def test_bad_transfer_inputs():
    feats = _unit((4, 4, 8), 0)
    with pytest.raises(ValueError, match="0..2"):
        transfer_labels([feats], [np.full((4, 4), 3)], feats, 3)
    with pytest.raises(ValueError, match="channels"):
        transfer_labels([feats], [np.zeros((4, 4), int)], _unit((4, 4, 6), 1), 3)


# ---------------------------------------------------------------- the transfer request through the real backend


@pytest.fixture(scope="module")
def fruit():
    """The bundled splat, its labels, close cameras (the letters are the parts) and the
    ground-truth label map of each view: three renders with one label per colour channel,
    argmax (occlusion-aware), 0 where the splat covers less than half of a pixel."""
    data = read_splats(SAMPLE)
    labels = fruit_labels()
    lo, hi = np.percentile(data.means(), [2, 98], axis=0)
    cams = orbit_cameras((lo + hi) / 2, 1.2 * float(np.linalg.norm(hi - lo)), 5, 256, 256, fov_deg=20,
                         up=(0, 0, 1), elevation_deg=(40.0, 75.0), name_prefix="fruit")  # fmt: skip
    categories = json.loads((SAMPLE_DIR / "fruit_drops_minimal.json").read_text())["dataset"]["task_attributes"]["categories"]
    palette = np.array([c["color"] for c in categories], np.float32) / 255  # the dataset's own label colours
    sh = ((palette[labels] - 0.5) / C0)[:, None, :].astype(np.float32)
    return {"gaussians": data.gaussian_arrays(), "labels": labels, "cams": cams, "sh": sh}


@pytest.fixture(scope="module")
def fruit_truth(fruit, client):
    cover = []
    for j in range(3):
        values = np.stack([(fruit["labels"] == 3 * j + c).astype(np.float32) for c in range(3)], axis=1)
        cover.append(render_views(client, fruit["gaussians"], ((values - 0.5) / C0)[:, None, :].astype(np.float32), fruit["cams"]))
    renders = render_views(client, fruit["gaussians"], fruit["sh"], fruit["cams"])
    truth = []
    for i, (_, alpha) in enumerate(renders):
        stack = np.concatenate([cover[j][i][0] for j in range(3)], axis=2)
        truth.append(np.where(alpha >= 128, stack.argmax(axis=2), 0).astype(np.int32))
    return renders, truth


def _expected_self_transfer(source_labels, alpha, grid, num_labels):
    """The answer when a view is its own source and k = 1: its patch labels, upsampled."""
    onehot = np.eye(num_labels, dtype=np.float32)[patch_labels(source_labels, grid, grid, num_labels)]
    out = upsample_labels(onehot, *source_labels.shape)
    out[alpha < 128] = 0
    return out


def test_rgb_patches_transfer_fruit_drops_labels_to_other_views(client, fruit, fruit_truth):
    renders, truth = fruit_truth
    source = (renders[0][0], truth[0])
    start = time.perf_counter()
    maps, images, result = client_transfer(client, fruit["gaussians"], fruit["sh"], fruit["cams"], [source], "rgb-patches",
                                           num_labels=9, k=5, feature_size=448)  # fmt: skip
    seconds = time.perf_counter() - start
    assert result["ok"] and len(maps) == len(images) == 5
    for (rgb, alpha), label_map, image in zip(renders, maps, images, strict=True):
        assert label_map.dtype == np.int32 and label_map.shape == (256, 256) and image.shape == (256, 256, 3)
        assert np.array_equal(image, rgb), "the transfer renders exactly what a render request renders"
        assert (label_map[alpha < 128] == 0).all() and label_map.min() >= 0 and label_map.max() <= 8
    covered = [alpha >= 128 for _, alpha in renders]
    agree = np.mean([(maps[i][covered[i]] == truth[i][covered[i]]).mean() for i in range(1, 5)])
    parts = [covered[i] & (truth[i] > 0) for i in range(1, 5)]
    part_agree = np.mean([(maps[i][p] == truth[i][p]).mean() for i, p in zip(range(1, 5), parts, strict=True)])
    background_only = np.mean([(truth[i][covered[i]] == 0).mean() for i in range(1, 5)])
    # Measured (CPU, 256 px, feature_size 448, k = 5): agreement 0.955 on covered pixels of the
    # four other views (labelling everything 0 would give 0.830), 0.787 on the letters (parts).
    assert agree > 0.93 and agree > background_only + 0.08, f"agreement {agree:.3f} (all-background {background_only:.3f})"
    assert part_agree > 0.7, f"agreement on the letters {part_agree:.3f}"
    assert seconds < 20, seconds
    # The source view, transferred to itself with k = 1, is its own patch labels.
    maps, _, _ = client_transfer(client, fruit["gaussians"], fruit["sh"], fruit["cams"][:1], [source], "rgb-patches",
                                 num_labels=9, k=1, feature_size=448)  # fmt: skip
    expected = _expected_self_transfer(truth[0], renders[0][1], 32, 9)
    assert (maps[0] == expected).mean() > 0.99, (maps[0] == expected).mean()


def test_tiny_dinov2_through_the_backend(client, fruit, fruit_truth, tiny_dino, tiny_registers):
    renders, truth = fruit_truth
    cams = fruit["cams"][:2]
    for folder in (tiny_dino, tiny_registers):
        progress = []
        maps, images, result = client_transfer(client, fruit["gaussians"], fruit["sh"], cams, [(renders[0][0], truth[0])], str(folder),
                                               num_labels=9, k=1, feature_size=224, progress=lambda d, t, m, seen=progress: seen.append((d, t, m)))  # fmt: skip
        assert result["ok"] and [m.shape for m in maps] == [(256, 256)] * 2
        assert result["feature_model"] == str(folder) and result["feature_device"] == "cpu"
        assert (maps[1][renders[1][1] < 128] == 0).all()
        assert any("feature model" in m for _, _, m in progress) and progress[-1][:2] == (2, 2)
        # Identical images give identical features: the source view reproduces its patch labels.
        expected = _expected_self_transfer(truth[0], renders[0][1], 16, 9)
        assert (maps[0] == expected).mean() > 0.99, (folder.name, (maps[0] == expected).mean())


def test_model_failures_through_the_backend(client, fruit, tmp_path, tiny_dino):
    source = [(np.zeros((32, 32, 3), np.uint8), np.zeros((32, 32), np.int32))]
    cams = fruit["cams"][:1]
    with pytest.raises(BackendError) as err:
        client_transfer(client, fruit["gaussians"], fruit["sh"], cams, source, str(tmp_path / "missing"), num_labels=2)
    assert err.value.kind == "model_unavailable" and "hf download" in str(err.value)
    pickled = tmp_path / "pickled"
    pickled.mkdir()
    shutil.copy(tiny_dino / "config.json", pickled / "config.json")
    (pickled / "pytorch_model.bin").write_bytes(b"never loaded")
    with pytest.raises(BackendError) as err:
        client_transfer(client, fruit["gaussians"], fruit["sh"], cams, source, str(pickled), num_labels=2)
    assert err.value.kind == "model_unavailable" and "pickle" in str(err.value)
    with pytest.raises(BackendError) as err:
        client_transfer(client, fruit["gaussians"], fruit["sh"], cams, source, "rgb-patches", num_labels=2, feature_size=100)
    assert err.value.kind == "invalid_request" and "multiple of 14" in str(err.value)
    assert client.alive(), "failures are answers, the process lives on"


def test_transfer_is_cancelled_between_views(client, fruit, fruit_truth):
    renders, truth = fruit_truth
    seen = []
    from masksplat_blender.client import BackendCancelled

    with pytest.raises(BackendCancelled):
        client_transfer(client, fruit["gaussians"], fruit["sh"], fruit["cams"] * 20, [(renders[0][0], truth[0])], "rgb-patches",
                        num_labels=9, progress=lambda d, t, m: seen.append(d), cancel_check=lambda: len(seen) >= 3)  # fmt: skip
    assert max(seen) < 100


# ---------------------------------------------------------------- the explicit download path


def test_download_refuses_what_is_not_a_model_id(tmp_path):
    for bad in ("../etc", "a/b/c", "x", "a/..", "a b/c"):
        with pytest.raises(BackendError, match="not a Hugging Face model id"):
            download_model(sys.executable, bad, tmp_path, allow_network=True)


def test_download_without_network_fails_clearly_and_quickly(tmp_path):
    start = time.perf_counter()
    try:
        download_model(sys.executable, "masksplat-tests/no-such-model", tmp_path / "model", timeout=60, allow_network=True)
    except BackendError as err:
        if err.kind == "timeout":
            pytest.skip("the network neither answers nor refuses here")
        assert err.kind == "download_failed", err
        assert "no-such-model" in str(err) and "--local-dir DIR" in str(err)
    else:
        pytest.fail("a model that does not exist was downloaded")
    assert time.perf_counter() - start < 60


def test_download_flag_needs_a_folder():
    from masksplat_blender.client import BACKEND_MAIN

    proc = subprocess.run([sys.executable, str(BACKEND_MAIN), "--download-model", "a/b"], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "--to FOLDER" in proc.stderr
