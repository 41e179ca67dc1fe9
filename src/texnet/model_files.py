"""Model folders in the style of diffusers: `model.safetensors` beside `config.json`.

No pickle is ever loaded, so opening a model file cannot run code. The JSON carries a format
version, the model kind (texture or style), the architecture and how it was trained; every
field is checked for type and range before anything is built from it. Beside them, `model.onnx`
holds the network's graph for onnxruntime, reading its weights from `model.safetensors` (so the
folder keeps one copy of them, and the graph records the weights' hash to refuse any other file).

Nothing here imports PyTorch until a PyTorch network is asked for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from .atomic_write import write_atomically
from .errors import TexnetError
from .generator_config import GeneratorConfig
from .runtime import (BYTES_PER_PIXEL, ONNX_NAME, OnnxRunner, check_weights_digest, choose_backend, memory_budget,
                      weights_digest)

FORMAT_VERSION = 1
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
PRETRAINED = resources.files("texnet") / "pretrained"
BUILTIN_PREFIX = "builtin:"
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
    """A path to a model folder, the name of a built-in model, or `builtin:NAME`."""
    text = str(name_or_path)
    if not text.strip():
        raise TexnetError("no model given: name a model folder or a built-in model (see `texnet models`)")
    builtin = builtin_models()
    if text.startswith(BUILTIN_PREFIX):
        name = text[len(BUILTIN_PREFIX):]
        if name not in builtin:
            raise TexnetError(f"there is no built-in model '{name}' (see `texnet models`)")
        return builtin[name]
    path = Path(text)
    if path.exists():
        if text in builtin and not (path / CONFIG_NAME).is_file():
            what = "folder" if path.is_dir() else "file"
            raise TexnetError(f"'{text}' here is a {what} that is not a texnet model, and it hides the built-in "
                              f"model '{text}'; write {BUILTIN_PREFIX}{text} for the built-in one")
        return path
    return builtin.get(text, path)


def read_config(folder: Path) -> dict:
    """config.json of a model folder, checked to be a texnet model document of this format."""
    path = Path(folder) / CONFIG_NAME
    if path.is_dir():
        raise TexnetError(f"{folder}: {CONFIG_NAME} is a folder, not a file")
    try:
        config = json.loads(path.read_text())
    except FileNotFoundError:
        raise TexnetError(f"{folder}: {CONFIG_NAME} is missing; not a texnet model folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as error:
        raise TexnetError(f"{folder}: {CONFIG_NAME} is not valid JSON ({str(error)[:80]})") from None
    except OSError as error:
        raise TexnetError(f"{folder}: cannot read {CONFIG_NAME} ({error.strerror or error})") from None
    if not isinstance(config, dict) or "format_version" not in config:
        raise TexnetError(f"{folder}: {CONFIG_NAME} is not a texnet model config")
    version = config["format_version"]
    if type(version) is not int:
        raise TexnetError(f"{folder}: {CONFIG_NAME} has format_version {version!r}; expected the number "
                          f"{FORMAT_VERSION}")
    if version != FORMAT_VERSION:
        raise TexnetError(f"{folder}: model format version {version} is not supported "
                          f"(this texnet reads version {FORMAT_VERSION}); upgrade texnet")
    kind = config.get("kind")
    if not isinstance(kind, str) or kind not in COMMANDS:
        raise TexnetError(f"{folder}: {CONFIG_NAME} has kind {kind!r}; expected one of {', '.join(COMMANDS)}")
    if not isinstance(config.get("training", {}), dict):
        raise TexnetError(f"{folder}: {CONFIG_NAME}'s 'training' section must be an object")
    digest = config.get("weights_sha256")
    if digest is not None and not (isinstance(digest, str) and len(digest) == 64):
        raise TexnetError(f"{folder}: {CONFIG_NAME}'s 'weights_sha256' must be a SHA-256 in hex")
    return config


def read_model(folder: Path, kind: str) -> tuple[GeneratorConfig, dict, str | None]:
    """The architecture, training record and weights hash of a model folder of this kind (no weights read)."""
    folder = Path(folder)
    if not folder.is_dir():
        raise TexnetError(f"{folder}: no such model (expected a folder with {CONFIG_NAME} and {WEIGHTS_NAME})")
    config = read_config(folder)
    if config["kind"] != kind:
        raise TexnetError(f"{folder}: this is a {config['kind']} model, not a {kind} model "
                          f"(use `{COMMANDS[config['kind']]}` with it)")
    try:
        generator = GeneratorConfig.from_dict(config.get("generator"))
    except TexnetError as error:
        raise TexnetError(f"{folder}: {CONFIG_NAME} has no valid 'generator' section: {error}") from None
    if not (folder / WEIGHTS_NAME).is_file():
        raise TexnetError(f"{folder}: {WEIGHTS_NAME} is missing")
    return generator, config.get("training", {}), config.get("weights_sha256")


def load_weights(folder: Path, config: GeneratorConfig, weights_sha256: str | None = None):
    """The PyTorch network of a model folder, its weights checked against the recorded hash and
    the architecture."""
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .generators import build_generator

    check_weights_digest(folder, weights_sha256)
    try:
        tensors = load_file(folder / WEIGHTS_NAME)
    except (SafetensorError, OSError, ValueError) as error:
        raise TexnetError(f"{folder}: {WEIGHTS_NAME} is corrupt or truncated ({error})") from None
    net = build_generator(config)
    expected = net.state_dict()
    missing, unknown = sorted(set(expected) - set(tensors)), sorted(set(tensors) - set(expected))
    if missing or unknown:
        names = (f"lacks '{missing[0]}'" if missing else "") + (" and " if missing and unknown else "") + \
                (f"has an unknown tensor '{unknown[0]}'" if unknown else "")
        raise TexnetError(f"{folder}: {WEIGHTS_NAME} does not match the architecture in {CONFIG_NAME}: it {names}")
    for name, value in expected.items():
        if tensors[name].shape != value.shape:
            raise TexnetError(f"{folder}: {WEIGHTS_NAME} does not match the architecture in {CONFIG_NAME}: "
                              f"'{name}' has shape {tuple(tensors[name].shape)}, expected {tuple(value.shape)}")
        if tensors[name].is_floating_point() and not torch.isfinite(tensors[name]).all():
            raise TexnetError(f"{folder}: {WEIGHTS_NAME} holds values that are not finite (NaN or infinite) "
                              f"in '{name}'; the model is broken")
    net.load_state_dict({name: tensors[name].to(value.dtype) for name, value in expected.items()})
    return net.eval()


def save_model(folder: Path, net, kind: str, info: dict) -> Path:
    """Write weights, config and the ONNX graph (each atomically) into `folder`."""
    from safetensors.torch import save_file

    from .onnx_export import export_onnx

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {key: value.detach().cpu().contiguous() for key, value in net.state_dict().items()}
    write_atomically(folder / WEIGHTS_NAME, lambda path: save_file(tensors, path))
    document = {"format_version": FORMAT_VERSION, "kind": kind, "generator": net.config.to_dict(),
                "weights_sha256": weights_digest(folder / WEIGHTS_NAME), "training": info}
    write_atomically(folder / CONFIG_NAME, lambda path: path.write_text(json.dumps(document, indent=2) + "\n"))
    export_onnx(net, folder / ONNX_NAME, weights_file=folder / WEIGHTS_NAME, kind=kind)
    return folder


def check_device(device) -> str:
    """'cpu' or a CUDA device PyTorch can use, as a string; anything else is refused in one line."""
    name = str(device)
    if name == "cpu":
        return name
    if not (name == "cuda" or name.startswith("cuda:") and name[5:].isdigit()):
        raise TexnetError(f"device '{name}': expected cpu, cuda or cuda:N")
    import torch

    if not torch.cuda.is_available():
        raise TexnetError(f"device '{name}': no CUDA GPU is available to PyTorch here; use cpu")
    index = int(name[5:]) if ":" in name else 0
    if index >= torch.cuda.device_count():
        raise TexnetError(f"device '{name}': this machine has {torch.cuda.device_count()} CUDA GPU(s)")
    return name


@dataclass
class RunPlan:
    backend: str  # "onnx" or "torch"
    budget: int  # bytes one pass may add
    bytes_per_pixel: int  # what one output pixel costs in one pass on this backend and precision

    def fits(self, pixels: int) -> bool:
        return pixels * self.bytes_per_pixel <= self.budget


class PretrainedGenerator:
    """A trained generator plus what it was trained on; `TextureGenerator` and `Stylizer` add their job.

    Built either around a PyTorch network in memory (after training) or from a model folder, whose
    weights are read only when a backend needs them: onnxruntime reads model.onnx, PyTorch
    model.safetensors.
    """

    kind = ""  # "texture" or "style": the model files this class loads

    def __init__(self, net=None, info: dict | None = None, *, config: GeneratorConfig | None = None,
                 folder: Path | None = None, device="cpu", weights_sha256: str | None = None):
        if net is None and folder is None:
            raise ValueError("give a network or a model folder")
        self.config = net.config if net is not None else config
        self.check_config(self.config)
        self.info = dict(info or {})
        self.folder = Path(folder) if folder is not None else None
        self.device = check_device(device)
        self.weights_sha256 = weights_sha256
        self._net = net
        self._runners: dict[str, object] = {}

    def check_config(self, config: GeneratorConfig) -> None:
        """Subclasses refuse networks that cannot do their job."""

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, device="cpu"):
        folder = model_folder(name_or_path)
        config, info, digest = read_model(folder, cls.kind)
        return cls(info=info, config=config, folder=folder, device=device, weights_sha256=digest)

    def save_pretrained(self, folder: str | Path) -> Path:
        return save_model(Path(folder), self.net, self.kind, self.info)

    @property
    def net(self):
        """The PyTorch network (loaded from the model folder on first use)."""
        if self._net is None:
            self._net = load_weights(self.folder, self.config, self.weights_sha256)
        return self._net

    def has_onnx(self) -> bool:
        return self.folder is not None and (self.folder / ONNX_NAME).is_file()

    def backend(self, requested: str = "auto", pixels: int = 0, memory_limit_mb: float | None = None,
                bf16: bool | None = None) -> str:
        """The backend that will run a pass over `pixels` output pixels: see runtime.choose_backend."""
        whole = pixels * BYTES_PER_PIXEL["onnx"] <= memory_budget(memory_limit_mb)
        return choose_backend(requested, self.device.split(":")[0], self.has_onnx(), whole, bf16)

    def plan(self, requested: str, pixels: int, memory_limit_mb: float | None, bf16: bool | None,
             what: str) -> RunPlan:
        """How a job of `pixels` pixels (`what`, for messages) will run: backend, memory budget and
        the bytes a pixel costs in one pass there. onnxruntime cannot work in strips, so a pass it
        was asked for that does not fit is refused."""
        chosen = self.backend(requested, pixels, memory_limit_mb, bf16)
        cost = "onnx"
        if chosen == "torch":
            cost = "torch-bfloat16" if self.runner("torch").use_bf16(bf16) else "torch-float32"
        plan = RunPlan(chosen, memory_budget(memory_limit_mb), BYTES_PER_PIXEL[cost])
        if chosen == "onnx" and not plan.fits(pixels):
            raise TexnetError(f"{what} needs about {pixels * plan.bytes_per_pixel / 1e9:.1f} GB in one onnxruntime "
                              "pass, over the memory limit; --backend torch makes it in strips")
        return plan

    def runner(self, backend: str):
        """The onnxruntime session or PyTorch runner for `backend` ("onnx" or "torch"), made once."""
        if backend not in self._runners:
            if backend == "onnx":
                self._runners[backend] = OnnxRunner(self.folder, self.config.input_names(), self.weights_sha256)
            else:
                from .torch_runner import TorchRunner

                self._runners[backend] = TorchRunner(self.net, self.device)
        return self._runners[backend]

    def run(self, inputs: list[np.ndarray], backend: str, bf16: bool | None = None) -> np.ndarray:
        """One pass over a batch: inputs in the order of GeneratorConfig.input_names, output
        (B, 3, H, W) float32 in [0, 1]. Refuses output that is not finite (a broken model)."""
        runner = self.runner(backend)
        output = runner.run(inputs) if backend == "onnx" else runner.run(inputs, bf16).numpy()
        check_finite(output)
        return output


def check_finite(output: np.ndarray) -> None:
    if not np.isfinite(output).all():
        raise TexnetError("the model produced values that are not finite (NaN); its weights are broken")
