"""Training a texture network from one example (Ulyanov et al. 2016, section 3).

Checkpoints (generator, optimiser, noise RNG, loss history) are safetensors + JSON written
atomically every `checkpoint_every` iterations, so a killed run resumes with `resume=True`
and loses at most one interval.
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
import torch.nn.functional as F
from PIL import Image
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

from . import distributed
from .atomic_write import write_atomically
from .descriptor import TEXTURE_LAYERS, VGG19Descriptor
from .errors import TexnetError
from .generators import GeneratorConfig, bf16_is_fast, build_generator
from .image_io import image_to_tensor, resize_to_fit
from .losses import NormalizeGradient, SW_LAYERS, SlicedWassersteinTarget, SpectrumTarget, TextureTarget
from .outputs import check_model_output
from .progress import progress_bar
from .sampling import MAX_SEED, TextureGenerator, image_digest

CHECKPOINT = "checkpoint"
ESTIMATE_AFTER = 5  # iterations timed before the run says how long it will take


@dataclass
class RunConfig:
    """What every training run has: sizes, the Adam schedule, precision, seed, checkpoints and
    the generator's shape. Defaults are the texture paper's recipe."""

    size: int = 256  # training samples (or crops) are size x size
    batch: int = 16
    iters: int = 2000
    lr: float = 0.1
    lr_decay: float = 0.7  # multiply the learning rate by this ...
    decay_start: int = 1000  # ... from this iteration on ...
    decay_every: int = 300  # ... every this many iterations
    bf16: bool | None = False  # run VGG and the generator in bfloat16; None: where the hardware computes it natively
    seed: int = 0
    checkpoint_every: int = 100
    minutes_budget: float | None = None  # the time the recipe is meant to take; a slower run says so at its start
    float32_minutes_budget: float | None = None  # its time where the run cannot use bfloat16 (None: the same)
    init_from: str | None = None  # a model (folder or built-in name) whose weights to start from
    # The model keeps an exponential moving average of the weights with this decay (0: the last step's weights).
    # With a few samples per step the last steps' weights still jump about; their average is the better net.
    ema: float = 0.0
    loss: str = "gram"  # the style or texture loss: "gram" (the papers) or "sw" (sliced Wasserstein, Heitz et al. 2021)
    # Weight of the colour histogram term: sliced Wasserstein distance of the result's RGB pixels to the example's (or
    # painting's). Colours VGG's Gram matrices hardly see still show in the pixels' distribution (Risser et al. 2017).
    histogram: float = 0.0
    generator: GeneratorConfig = field(default_factory=GeneratorConfig)


@dataclass
class TrainConfig(RunConfig):
    example_size: int = 256  # the example is shrunk to this longer side
    diversity: float = 0.0  # Improved Texture Networks' diversity term weight
    normalize_gradients: bool = False  # texture_nets' per-layer L1 normalisation of the loss gradient
    vgg_padding: str = "same"  # "valid": VGG without padding (texture_nets' -vgg_no_pad)
    multiscale: float = 0.0  # weight of the same loss on sample and example at half resolution
    spectrum: float = 0.0  # weight of the log power spectrum term (losses.SpectrumTarget)


PRESETS = {
    # The paper's recipe: 2,000 iterations of batch 16 at 256 px, lr 0.1 decayed x0.7 from 1,000.
    "paper": TrainConfig(),
    # At most 10 minutes on 2 CPU cores (README, "The cpu preset on both kinds of CPU"). One 256 px sample per step,
    # instance norm (batch norm gave washed-out, near-identical samples at test time on this budget), 5 scales (the
    # recipe study: a lower held-out Gram loss than 6 on every texture tried, and 10% cheaper per step), the colour
    # histogram term (the study: saturated blobs 7x and 3.5x rarer on grass and pink-marble, SW lower on all three),
    # and the model keeps the moving average of its weights (held-out Gram 33% and 15% lower on lava and water).
    "cpu": TrainConfig(size=256, batch=1, iters=500, lr=0.05, lr_decay=0.8, decay_start=280, decay_every=55,
                       bf16=None, minutes_budget=10, histogram=1e10, ema=0.95,
                       generator=GeneratorConfig(scales=5, norm="instance")),
}


def scaled_to(config: RunConfig, iters: int) -> RunConfig:
    """The recipe for `iters` iterations, its learning-rate schedule and time budget stretched or shrunk to match."""
    scale = iters / config.iters
    budgets = {key: None if getattr(config, key) is None else getattr(config, key) * scale for key in BUDGETS}
    return replace(config, iters=iters, decay_start=round(config.decay_start * scale),
                   decay_every=max(1, round(config.decay_every * scale)), **budgets)


DECAY = ("decay_start", "decay_every")  # what `scaled_to` stretches with iters; a resumed run keeps its own
BUDGETS = ("minutes_budget", "float32_minutes_budget")  # stretched with iters too; a resumed run takes the new ones


def without_schedule(settings: dict) -> dict:
    """The settings a resumed run must share with its checkpoint: all but the length and what follows from it."""
    return {key: value for key, value in settings.items() if key not in ("iters", *BUDGETS, *DECAY)}


def learning_rate(config: TrainConfig, iteration: int) -> float:
    if iteration < config.decay_start:
        return config.lr
    return config.lr * config.lr_decay ** (1 + (iteration - config.decay_start) // config.decay_every)


def colour_target(image: torch.Tensor) -> SlicedWassersteinTarget:
    """The histogram term's target: the distribution of an image's RGB pixels, (1, 3, H, W) in [0, 1]."""
    return SlicedWassersteinTarget({"pixels": image[0].flatten(1)})


def diversity_loss(features: dict[str, torch.Tensor]) -> torch.Tensor:
    """Negative mean log distance of each sample to its nearest neighbour in the batch (an
    entropy estimate, Improved Texture Networks): lower when samples differ more."""
    flat = torch.cat([features[name].flatten(1) / features[name][0].numel() ** 0.5 for name in features], dim=1)
    distances = torch.cdist(flat, flat) + torch.eye(len(flat), device=flat.device) * 1e9
    return -torch.log(distances.min(dim=1).values + 1e-8).mean()


class Trainer:
    """The loop every generator is trained with: Adam on a step schedule, a progress bar,
    atomic checkpoints and exact resume, on one process or several (texnet.distributed).
    Subclasses say what one step's loss is (`loss`, on this process's `share` of the batch), what
    identifies the training data (`data_digest`), and what a finished model looks like (`model`,
    `write_previews`).
    """

    def __init__(self, config: RunConfig, output: Path, device="cpu", progress: bool = True, min_size: int = 16):
        check_run_config(config, min_size)
        self.ranks = distributed.join(torch.device(device))
        self.share = self.ranks.share(config.batch)
        self.device = self.ranks.device(torch.device(device))
        self.config, self.output, self.progress = config, Path(output), progress and self.ranks.main
        self.bf16 = bf16_is_fast(self.device) if config.bf16 is None else config.bf16
        torch.set_flush_denormal(True)  # denormals slow some CPUs down 2x and change nothing
        torch.manual_seed(config.seed)  # the generator's initial weights, the same on every process
        self.net = build_generator(config.generator).to(self.device)
        self.trained_net = distributed.wrap(self.net, self.ranks, self.device)
        self.optimizer = torch.optim.Adam(self.net.parameters(), lr=config.lr)
        self.rng = torch.Generator().manual_seed(config.seed)  # noise and data draws, saved in checkpoints
        self.iteration, self.history = 0, []
        if config.init_from:
            self.start_from(config.init_from)
        self.averaged = (AveragedModel(self.net, multi_avg_fn=get_ema_multi_avg_fn(config.ema), use_buffers=True)
                         if config.ema else None)

    model_class: type = TextureGenerator  # the kind of model this trainer makes

    def start_from(self, name_or_path: str) -> None:
        """Warm start: the weights of an existing model of the same kind and architecture."""
        donor = self.model_class.from_pretrained(name_or_path)
        if donor.config != self.config.generator:
            raise TexnetError(f"--init-from {name_or_path}: its generator {donor.config} differs from this run's "
                              f"{self.config.generator}")
        self.net.load_state_dict(donor.net.state_dict())

    def loss(self) -> torch.Tensor:
        raise NotImplementedError

    def data_digest(self) -> str:
        raise NotImplementedError

    def model(self):
        raise NotImplementedError

    def write_previews(self, model) -> None:
        raise NotImplementedError

    def step(self) -> float:
        for group in self.optimizer.param_groups:
            group["lr"] = learning_rate(self.config, self.iteration)
        loss = self.loss()
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        self.optimizer.step()
        if self.averaged is not None:
            self.averaged.update_parameters(self.net)
        self.iteration += 1
        self.history.append(self.ranks.average(float(loss.detach())))
        return self.history[-1]

    def generate(self, *inputs) -> torch.Tensor:
        # bf16 autocast halves the generator's cost on AVX-512 BF16 CPUs; weights stay float32.
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.bf16):
            return self.trained_net(*inputs).float()

    def train(self, resume: bool = False, on_step: Callable[["Trainer"], None] | None = None):
        """Train to `config.iters` and save everything; `resume` continues the output's checkpoint.
        The output folder must be new, empty, or (with `resume`) hold a checkpoint. `on_step(self)`
        runs after every step (for live progress; an exception from it stops the run, as Ctrl-C does)."""
        if self.ranks.main:  # it creates the folder: one process does, the others find it
            check_model_output(self.output, resume)
        self.ranks.barrier()
        if resume and not self.load_checkpoint():
            raise TexnetError(f"{self.output}: no checkpoint to resume from")
        with progress_bar(total=self.config.iters, initial=self.iteration, enabled=self.progress, unit="it") as bar:
            timed_from = None
            while self.iteration < self.config.iters:
                loss = self.step()
                bar.update(1)
                bar.set_postfix(loss=f"{loss:.4g}")
                if timed_from is None:  # the first step warms caches up: time from the second
                    timed_from = (self.iteration, time.monotonic())
                elif self.iteration == timed_from[0] + ESTIMATE_AFTER and self.progress:
                    bar.write(self.estimate((time.monotonic() - timed_from[1]) / ESTIMATE_AFTER))
                if self.iteration % self.config.checkpoint_every == 0 and self.iteration < self.config.iters:
                    self.save_checkpoint()
                if on_step is not None:
                    on_step(self)
        return self.finish()

    def estimate(self, seconds_per_iteration: float) -> str:
        """What the run will take on this machine, and whether that exceeds the recipe's budget."""
        minutes = seconds_per_iteration * (self.config.iters - self.iteration) / 60
        line = f"texnet: about {minutes:.0f} min to go on this machine ({seconds_per_iteration:.2f} s per iteration)"
        budget, precision, why = self.config.minutes_budget, "", "" if self.bf16 else " (no native bfloat16 here)"
        if not self.bf16 and self.config.float32_minutes_budget is not None:
            budget, precision, why = self.config.float32_minutes_budget, " without bfloat16", ""
        iterations_left = self.config.iters - self.iteration
        if budget is not None and minutes > 1.1 * budget * iterations_left / self.config.iters:
            line += (f"; this recipe is meant to take {budget:g} min{precision}, so this machine is slower than the "
                     f"ones it was timed on{why}")
        return line

    @property
    def final_net(self) -> nn.Module:
        """The weights a finished model keeps: their moving average where the run keeps one."""
        return self.net if self.averaged is None else self.averaged.module

    def training_info(self) -> dict:
        settings = {key: value for key, value in asdict(self.config).items() if key != "generator"}
        return {"config": settings, "bf16_used": self.bf16, "iterations": self.iteration,
                "final_loss": self.history[-1] if self.history else None}

    def finish(self):
        model = self.model()
        if self.ranks.main:
            model.save_pretrained(self.output)
            self.save_checkpoint()
            save_loss_curve(self.history, self.output / "loss.png")
            self.write_previews(model)
        self.ranks.barrier()
        return model

    # Checkpoints: everything needed to continue exactly, in safetensors + JSON (no pickle).
    def save_checkpoint(self) -> None:
        if not self.ranks.main:
            return
        folder = self.output / CHECKPOINT
        folder.mkdir(parents=True, exist_ok=True)
        tensors = {f"net.{k}": v for k, v in self.net.state_dict().items()}
        if self.averaged is not None:
            tensors.update({f"ema.{k}": v for k, v in self.averaged.state_dict().items()})
        optimizer_state = self.optimizer.state_dict()
        for index, state in optimizer_state["state"].items():
            for key, value in state.items():
                tensors[f"adam.{index}.{key}"] = value if torch.is_tensor(value) else torch.tensor(value)
        tensors["rng"] = self.rng.get_state()
        tensors = {k: v.detach().cpu().contiguous() for k, v in tensors.items()}
        write_atomically(folder / "state.safetensors", lambda path: save_file(tensors, path))
        meta = {"iteration": self.iteration, "history": self.history, "config": asdict(self.config),
                "data_sha256": self.data_digest()}
        write_atomically(folder / "state.json", lambda path: path.write_text(json.dumps(meta)))

    def load_checkpoint(self) -> bool:
        """Continue from the last checkpoint in the output folder; False if there is none."""
        folder = self.output / CHECKPOINT
        if not (folder / "state.json").exists():
            return False
        try:
            meta = json.loads((folder / "state.json").read_text())
            tensors = load_file(folder / "state.safetensors")
            self.restore(meta, tensors)
        except TexnetError:
            raise
        except (OSError, ValueError, KeyError, TypeError, IndexError, RuntimeError, SafetensorError) as error:
            raise TexnetError(f"{folder}: the checkpoint is corrupt or incomplete ({type(error).__name__}: "
                              f"{str(error).strip().splitlines()[0] if str(error).strip() else 'no detail'}); "
                              "train into a new folder") from None
        return True

    def restore(self, meta: dict, tensors: dict[str, torch.Tensor]) -> None:
        if meta.get("data_sha256") != self.data_digest():
            raise TexnetError(f"{self.output}: the checkpoint was trained on different images; "
                              "use another output folder or drop --resume")
        # A setting added since the checkpoint was written had its default value then.
        saved_config = {**asdict(type(self.config)()), **meta["config"]}
        if without_schedule(saved_config) != without_schedule(asdict(self.config)):
            raise TexnetError(f"{self.output}: the checkpoint used other training settings; "
                              "resume with the same options (only --iters may change)")
        # A run resumed for more (or fewer) iterations keeps its own decay, not one stretched to the new length.
        self.config = replace(self.config, **{key: saved_config[key] for key in DECAY})
        self.net.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("net.")})
        if self.averaged is not None:
            self.averaged.load_state_dict({k[4:]: v for k, v in tensors.items() if k.startswith("ema.")})
        optimizer_state = self.optimizer.state_dict()
        for index in range(len(optimizer_state["param_groups"][0]["params"])):
            state = {key.split(".", 2)[2]: value.to(self.device) for key, value in tensors.items()
                     if key.startswith(f"adam.{index}.")}
            if state:
                state["step"] = state["step"].cpu()
                optimizer_state["state"][index] = state
        self.optimizer.load_state_dict(optimizer_state)
        self.rng.set_state(tensors["rng"])
        iteration, history = meta["iteration"], meta["history"]
        if type(iteration) is not int or not 0 <= iteration == len(history):
            raise ValueError("iteration count and loss history disagree")
        self.iteration, self.history = iteration, [float(value) for value in history]


def check_run_config(config: RunConfig, min_size: int) -> None:
    """Refuse settings no training can run with, in one line each (the API gets the CLI's checks)."""
    for name in ("iters", "batch", "checkpoint_every", "decay_every"):
        value = getattr(config, name)
        if type(value) is not int or value < 1:
            raise TexnetError(f"{name} must be a whole number of at least 1, not {value!r}")
    if config.loss not in ("gram", "sw"):
        raise TexnetError(f"loss must be 'gram' or 'sw', not {config.loss!r}")
    if not isinstance(config.ema, (int, float)) or not 0 <= config.ema < 1:
        raise TexnetError(f"the weight average's decay must be at least 0 and below 1, not {config.ema!r}")
    if type(config.seed) is not int or not 0 <= config.seed <= MAX_SEED:
        raise TexnetError(f"seed must be a whole number from 0 to {MAX_SEED}, not {config.seed!r}")
    for name in ("lr", "lr_decay"):
        value = getattr(config, name)
        if not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
            raise TexnetError(f"{name.replace('_', ' ')} must be a positive number, not {value!r}")
    smallest = max(config.generator.min_side, min_size)
    if type(config.size) is not int or config.size < smallest:
        raise TexnetError(f"--size must be at least {smallest} px for a {config.generator.scales}-scale generator")
    config.generator.validate()


def training_descriptor(descriptor: VGG19Descriptor | None, layers, bf16: bool, device,
                        padding: str = "same") -> VGG19Descriptor:
    """The descriptor (real weights unless one is given) on `device`, returning `layers`, with the
    run's bf16 and padding settings; a shallow copy shares the frozen weights, not the caller's settings."""
    descriptor = copy.copy(descriptor or VGG19Descriptor.pretrained(layers)).to(device)
    descriptor.layers, descriptor.bf16, descriptor.padding = tuple(layers), bf16, padding
    return descriptor


class TextureTrainer(Trainer):
    def __init__(self, example: Image.Image, output: Path, config: TrainConfig, descriptor=None,
                 device="cpu", progress: bool = True):
        if config.diversity and config.batch < 2:
            raise TexnetError("--diversity compares samples within a batch: use --batch 2 or more")
        super().__init__(config, output, device, progress)
        self.example = resize_to_fit(example, config.example_size)
        layers = SW_LAYERS if config.loss == "sw" else TEXTURE_LAYERS
        self.descriptor = training_descriptor(descriptor, layers, self.bf16, self.device, config.vgg_padding)
        pixels = image_to_tensor(self.example).to(self.device)
        scales = [(1.0, pixels)] + ([(config.multiscale, F.avg_pool2d(pixels, 2))] if config.multiscale else [])
        for _, image in scales:
            if min(image.shape[-2:]) < self.descriptor.min_input_side():
                raise TexnetError(f"the example ({self.example.width}x{self.example.height}) is too small for "
                                  "these loss settings: drop --multiscale or VGG without padding")
        self.targets = [(weight, self.texture_target(image)) for weight, image in scales]
        self.spectrum = SpectrumTarget.from_image(pixels, config.size) if config.spectrum else None
        # Pale or dark smudges are colours the example has (almost) none of: the histogram term sees them.
        self.colours = colour_target(pixels) if config.histogram else None

    def texture_target(self, image: torch.Tensor):
        if self.config.loss == "sw":
            return SlicedWassersteinTarget.from_image(self.descriptor, image)
        return TextureTarget.from_image(self.descriptor, image)

    def texture_loss(self, images: torch.Tensor, target) -> tuple[torch.Tensor, dict]:
        features = self.descriptor(images)
        scored = ({name: NormalizeGradient.apply(value) for name, value in features.items()}
                  if self.config.normalize_gradients else features)
        loss = target.loss(scored, self.rng) if self.config.loss == "sw" else target.loss(scored)
        return loss, features

    def loss(self) -> torch.Tensor:
        config = self.config
        noise = self.net.make_noise(config.batch, config.size, config.size, self.rng, self.device)
        samples = self.generate([scale[self.share] for scale in noise])
        total, features = self.texture_loss(samples, self.targets[0][1])
        for weight, target in self.targets[1:]:
            total = total + weight * self.texture_loss(F.avg_pool2d(samples, 2), target)[0]
        if self.spectrum is not None:
            total = total + config.spectrum * self.spectrum.loss(samples)
        if self.colours is not None:
            total = total + config.histogram * self.colours.loss({"pixels": samples.float()}, self.rng)
        total = total.mean()
        return total + config.diversity * diversity_loss(features) if config.diversity else total

    def data_digest(self) -> str:
        return image_digest(self.example)

    def model(self) -> TextureGenerator:
        info = {**self.training_info(), "example_sha256": image_digest(self.example),
                "example_size": list(self.example.size)}
        return TextureGenerator(self.final_net, info)

    def write_previews(self, model: TextureGenerator) -> None:
        sample_grid(model, self.example, self.config.size * 2).save(self.output / "samples.png")


def train_texture(example: Image.Image, output: str | Path, config: TrainConfig = TrainConfig(),
                  resume: bool = False, device="cpu", descriptor=None, progress: bool = True,
                  on_step: Callable[[Trainer], None] | None = None) -> TextureGenerator:
    """Train a texture network on `example` and save it (with checkpoint, loss curve and
    sample grid) into the folder `output`; `on_step(trainer)` runs after every step."""
    return TextureTrainer(example, Path(output), config, descriptor, device, progress).train(resume, on_step)


def save_loss_curve(history: list[float], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6, 3.5), dpi=100)
    axes.semilogy(range(1, len(history) + 1), history, linewidth=0.8)
    axes.set_xlabel("iteration")
    axes.set_ylabel("training loss (batch mean)")
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(path)
    plt.close(figure)


def sample_grid(model: TextureGenerator, example: Image.Image, size: int, count: int = 3) -> Image.Image:
    """The example beside `count` samples of size x size, for a quick look."""
    samples = model.sample(count, (size, size), seed=0)
    shown = resize_to_fit(example, size)
    grid = Image.new("RGB", (size * (count + 1) + 8 * count, size), "white")
    grid.paste(shown, (0, 0))
    for index, sample in enumerate(samples, start=1):
        grid.paste(sample, (index * (size + 8), 0))
    return grid
