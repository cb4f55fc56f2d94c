"""DINOv2 feature time per view at the sizes the paper and the add-on use.

    .venv/bin/python benchmarks/bench_features.py [--device cpu|cuda] [--sizes 448 896]

No weights can be downloaded here, so the models are randomly initialised with the real
configurations (dinov2-small, dinov2-base, dinov2-with-registers-large): the time of a
forward pass does not depend on the weights' values. Prints one table: seconds per image
(after one warm-up) for each model and input size, and the patch grid.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from masksplat_blender.backend.features import FeatureModel, patch_features  # noqa: E402

CONFIGS = {
    "dinov2-small": dict(
        hidden_size=384, num_hidden_layers=12, num_attention_heads=6, intermediate_size=1536
    ),
    "dinov2-base": dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072
    ),
    "dinov2-with-registers-large": dict(
        hidden_size=1024,
        num_hidden_layers=24,
        num_attention_heads=16,
        intermediate_size=4096,
        num_register_tokens=4,
    ),  # fmt: skip
}


def build(name: str, device: str):
    import torch
    import transformers

    config = dict(CONFIGS[name], patch_size=14, image_size=518)
    if "registers" in name:
        module = transformers.Dinov2WithRegistersModel(transformers.Dinov2WithRegistersConfig(**config))
    else:
        module = transformers.Dinov2Model(transformers.Dinov2Config(**config))
    module = module.eval().to(device)
    if device == "cuda":
        module = module.to(torch.float32)
    return FeatureModel(name, module, 14, int(config.get("num_register_tokens", 0)), device)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu", choices=("cpu", "cuda"))
    parser.add_argument("--sizes", type=int, nargs="+", default=[448, 896])
    parser.add_argument("--models", nargs="+", default=list(CONFIGS))
    args = parser.parse_args()
    import torch

    image = (np.random.default_rng(0).random((512, 512, 3)) * 255).astype(np.uint8)
    print(
        f"device: {args.device} ({torch.cuda.get_device_name() if args.device == 'cuda' else f'{torch.get_num_threads()} CPU threads'})\n"
    )
    print("| model | input | patch grid | seconds per image |\n|---|---|---|---|")
    for name in args.models:
        model = build(name, args.device)
        for size in args.sizes:
            patch_features(model, image, size)  # warm-up
            if args.device == "cuda":
                torch.cuda.synchronize()
            runs = 3
            start = time.perf_counter()
            for _ in range(runs):
                feats = patch_features(model, image, size)
            if args.device == "cuda":
                torch.cuda.synchronize()
            seconds = (time.perf_counter() - start) / runs
            print(
                f"| {name} | {size}x{size} | {feats.shape[0]}x{feats.shape[1]}x{feats.shape[2]} | {seconds:.3f} |",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
