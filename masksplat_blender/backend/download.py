"""Download Model: fetch a Hugging Face model's safetensors into a folder (`--download-model`),
the one place the backend uses the network, run only on the user's explicit request."""

from __future__ import annotations

import os
from pathlib import Path

from ..core.request import is_hugging_face_id
from .features import ModelUnavailable, how_to_get

DOWNLOAD_PATTERNS = ["*.safetensors", "*.json", "*.txt"]


def download_model(model_id: str, folder) -> dict:
    """Download a Hugging Face model's safetensors and JSON files into `folder` (never pickles).

    It undoes HF_HUB_OFFLINE (which the feature loader sets): this is the one path allowed the network.
    Raises ModelUnavailable with a message saying what to do instead.
    """
    if not is_hugging_face_id(model_id):
        raise ModelUnavailable(f"{model_id!r} is not a Hugging Face model id (owner/name, e.g. facebook/dinov2-small)")
    os.environ.pop("HF_HUB_OFFLINE", None)
    os.environ.pop("TRANSFORMERS_OFFLINE", None)
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        raise ModelUnavailable("the backend Python has no huggingface_hub: press Install Backend in the add-on preferences") from None
    try:
        path = Path(snapshot_download(repo_id=model_id, local_dir=str(folder), allow_patterns=DOWNLOAD_PATTERNS))
    except Exception as err:  # noqa: BLE001 - network, missing repo, disk: all reported the same way
        first = (str(err) or type(err).__name__).strip().splitlines()[0]
        raise ModelUnavailable(
            f"downloading {model_id} failed ({type(err).__name__}: {first}). Check the internet connection and "
            "the model id. " + how_to_get(model_id, button=False)
        ) from None
    files = sorted(p.name for p in path.iterdir() if p.is_file())
    if not any(name.endswith(".safetensors") for name in files):
        raise ModelUnavailable(f"{model_id} has no safetensors weights on the Hub (only pickles?); MaskSplat does not load pickles")
    return {"folder": str(path), "files": files}
