"""Hugging Face checkpoints on disk.

    files = attnc.hf.load("path/to/all-MiniLM-L6-v2")   # [".../model.safetensors"]
    model.bind(files[0])

A sharded checkpoint (model.safetensors.index.json, as from_pretrained
writes for large models) gives its shards in the index's order. Nothing is
downloaded: the directory must hold the files.
"""

import json
from pathlib import Path

__all__ = ["load"]


def load(model_dir):
    """The .safetensors files of a local Hugging Face model directory."""
    d = Path(model_dir)
    if not d.is_dir():
        raise FileNotFoundError(f"{d}: not a directory (a local Hugging Face model)")
    index = d / "model.safetensors.index.json"
    if index.exists():
        weight_map = json.loads(index.read_text()).get("weight_map", {})
        shards = list(dict.fromkeys(weight_map.values()))
        missing = [s for s in shards if not (d / s).exists()]
        if missing:
            raise FileNotFoundError(f"{index} names shards that are missing: "
                                    f"{', '.join(missing)}")
        return [str(d / s) for s in shards]
    single = d / "model.safetensors"
    if single.exists():
        return [str(single)]
    files = sorted(str(p) for p in d.glob("*.safetensors"))
    if not files:
        raise FileNotFoundError(f"{d} holds no .safetensors file (a PyTorch .bin "
                                "checkpoint must be converted first)")
    return files
