"""Model folders in the style of diffusers: `model.safetensors` beside `config.json`.

No pickle is ever loaded, so opening a model file cannot run code. The JSON carries a format
version, the model kind (texture or style), the architecture and how it was trained.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .atomic_write import write_atomically
from .errors import TexnetError

FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"


def save_model(folder: Path, tensors: dict[str, torch.Tensor], config: dict) -> Path:
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().cpu().contiguous() for key, value in tensors.items()}
    write_atomically(folder / WEIGHTS_NAME, lambda path: save_file(tensors, path))
    document = {"format_version": FORMAT_VERSION, **config}
    write_atomically(folder / CONFIG_NAME, lambda path: path.write_text(json.dumps(document, indent=2) + "\n"))
    return folder


def load_model(folder: Path, kind: str) -> tuple[dict[str, torch.Tensor], dict]:
    """Read and check a model folder; every failure is one TexnetError naming the problem."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TexnetError(f"{folder}: no such model (expected a folder with {CONFIG_NAME} and {WEIGHTS_NAME})")
    config = read_config(folder)
    if config.get("kind") != kind:
        raise TexnetError(f"{folder}: this is a {config.get('kind', 'unknown')} model, not a {kind} model")
    try:
        tensors = load_file(folder / WEIGHTS_NAME)
    except FileNotFoundError:
        raise TexnetError(f"{folder}: {WEIGHTS_NAME} is missing") from None
    except (SafetensorError, OSError, ValueError) as error:
        raise TexnetError(f"{folder}: {WEIGHTS_NAME} is corrupt or truncated ({error})") from None
    return tensors, config


def read_config(folder: Path) -> dict:
    try:
        config = json.loads((folder / CONFIG_NAME).read_text())
    except FileNotFoundError:
        raise TexnetError(f"{folder}: {CONFIG_NAME} is missing; not a texnet model folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise TexnetError(f"{folder}: {CONFIG_NAME} is not valid JSON ({error})") from None
    if not isinstance(config, dict) or "format_version" not in config:
        raise TexnetError(f"{folder}: {CONFIG_NAME} is not a texnet model config")
    if config["format_version"] != FORMAT_VERSION:
        raise TexnetError(f"{folder}: model format version {config['format_version']} is not supported "
                          f"(this texnet reads version {FORMAT_VERSION}); upgrade texnet")
    return config


def load_state(module: torch.nn.Module, tensors: dict[str, torch.Tensor], folder: Path) -> None:
    try:
        module.load_state_dict(tensors)
    except RuntimeError as error:
        first = str(error).strip().splitlines()[0]
        raise TexnetError(f"{folder}: weights do not match the architecture in {CONFIG_NAME} ({first})") from None
