"""Model folders in the style of diffusers: `model.safetensors` beside `config.json`.

No pickle is ever loaded, so opening a model file cannot run code. The JSON carries a format
version, the model kind (texture or style), the architecture and how it was trained.
"""

from __future__ import annotations

import copy
import json
from dataclasses import asdict
from importlib import resources
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .atomic_write import write_atomically
from .errors import TexnetError
from .generators import GeneratorConfig, PyramidGenerator, bf16_is_fast

FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
PRETRAINED = resources.files("texnet") / "pretrained"
# What each kind of model is for, to point the user at the right command.
COMMANDS = {"texture": "texnet sample", "style": "texnet stylize"}


def builtin_models(kind: str | None = None) -> dict[str, Path]:
    """Built-in model folders by name (`brick`, `starry-night`, ...), shipped inside the package;
    only those of one kind ("texture" or "style") if `kind` is given."""
    if not PRETRAINED.is_dir():
        return {}
    folders = {entry.name: Path(str(entry)) for entry in sorted(PRETRAINED.iterdir(), key=lambda e: e.name)
               if (entry / CONFIG_NAME).is_file()}
    return {name: folder for name, folder in folders.items() if kind in (None, read_config(folder).get("kind"))}


def model_folder(name_or_path: str | Path) -> Path:
    """A path to a model folder, or the name of a built-in model."""
    path, builtin = Path(name_or_path), builtin_models()
    if path.exists() or str(name_or_path) not in builtin:
        return path
    return builtin[str(name_or_path)]


class PretrainedGenerator:
    """A trained generator plus what it was trained on; `TextureGenerator` and `Stylizer` add their job."""

    kind = ""  # "texture" or "style": the model files this class loads

    def __init__(self, net: PyramidGenerator, info: dict | None = None):
        self.net = net.eval()
        self.info = info or {}
        self.bf16_net: PyramidGenerator | None = None  # made on first use

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, device="cpu"):
        return cls(*load_generator(name_or_path, cls.kind, device))

    def save_pretrained(self, folder: str | Path) -> Path:
        return save_generator(Path(folder), self.net, self.kind, self.info)

    @property
    def config(self) -> GeneratorConfig:
        return self.net.config

    @property
    def device(self) -> torch.device:
        return next(self.net.parameters()).device

    def use_bf16(self, bf16: bool | None) -> bool:
        """`bf16`, or where it is None, whether bfloat16 is the faster choice on this device."""
        return bf16_is_fast(self.device) if bf16 is None else bf16

    @torch.no_grad()
    def run(self, noise: list[torch.Tensor], content: torch.Tensor | None = None,
            bf16: bool | None = None) -> torch.Tensor:
        """The net's output in float32. In bfloat16 the whole net runs in it (a copy of the
        weights): faster than autocast, which keeps the normalisations in float32."""
        if not self.use_bf16(bf16):
            return self.net(noise, content)
        if self.bf16_net is None:
            self.bf16_net = copy.deepcopy(self.net).to(torch.bfloat16)
        half = [z.to(torch.bfloat16) for z in noise]
        return self.bf16_net(half, None if content is None else content.to(torch.bfloat16)).float()


def save_generator(folder: Path, net: PyramidGenerator, kind: str, info: dict) -> Path:
    return save_model(Path(folder), net.state_dict(), {"kind": kind, "generator": asdict(net.config), "training": info})


def load_generator(name_or_path: str | Path, kind: str, device="cpu") -> tuple[PyramidGenerator, dict]:
    """The generator in a model folder (or built-in model) of this kind, and its training info."""
    folder = model_folder(name_or_path)
    tensors, document = load_model(folder, kind)
    try:
        config = GeneratorConfig(**document["generator"])
    except (KeyError, TypeError) as error:
        raise TexnetError(f"{folder}: {CONFIG_NAME} has no valid 'generator' section ({error})") from None
    net = PyramidGenerator(config)
    load_state(net, tensors, folder)
    return net.to(device).eval(), document.get("training", {})


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
        found = config.get("kind", "unknown")
        hint = f" (use `{COMMANDS[found]}` with it)" if found in COMMANDS else ""
        raise TexnetError(f"{folder}: this is a {found} model, not a {kind} model{hint}")
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
