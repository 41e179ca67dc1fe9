"""Training a stylization network for one painting, or several in one net (Ulyanov et al. 2016,
section 4; several styles by conditional instance norm, Dumoulin et al. 2017).

Each step stylizes a batch of random crops of photos and is scored by a painting's Gram
matrices (style) and the photos' own relu4_2 activations (content): the objective of the Gatys
baseline `texnet transfer`. With several paintings each crop is stylized towards one of them in
turn, through that style's row of every conditional norm.

Crops stream from disk through a DataLoader with worker processes, each crop drawn from its
global index alone (photo, scale, position): the data do not depend on how many processes or
workers train, nor on whether a run was resumed, so runs under torchrun follow the loss curve
of one process with the same global batch (texnet.distributed).
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from tqdm.auto import tqdm

from .descriptor import CONTENT_LAYER, TEXTURE_LAYERS
from .errors import TexnetError
from .generators import GeneratorConfig
from .image_io import image_files, image_to_tensor, load_image, resize_to_fit
from .losses import SlicedWassersteinTarget, TextureTarget, content_loss
from .sampling import image_digest
from .stylizer import VARIANTS, Stylizer
from .training import RunConfig, Trainer, colour_target, training_descriptor

PREVIEW_PHOTOS = 4  # held out of training, shown before/after in the model folder


@dataclass
class StyleTrainConfig(RunConfig):
    batch: int = 4
    iters: int = 3000
    lr_decay: float = 0.8
    decay_start: int = 300
    generator: GeneratorConfig = field(default_factory=lambda: copy.copy(VARIANTS["residual"]))
    style_weight: float = 1e-4  # the Gatys baseline uses 1e-3; see the README on why training wants less
    content_weight: float = 1.0
    style_size: int = 256  # the painting is shrunk to this longer side: it sets the brush-stroke scale
    workers: int = 1  # processes that decode and crop photos while the net trains
    temporal_weight: float = 0.0  # frame-difference loss (Xu et al. 2021) against flicker in video


# The Adam learning rate of each preset for each architecture: the residual net collapses to flat
# colour at the pyramid's rates (README, "Stylization networks").
LEARNING_RATES = {
    # The texture_nets authors' train.lua default for `-model johnson`, and the pyramid paper's.
    "paper": {"residual": 1e-3, "pyramid": 0.1},
    # Measured best in benchmarks/style_architectures.py (8 minutes each, starry-night).
    "cpu": {"residual": 0.003, "pyramid": 0.05},
}
STYLE_PRESETS = {
    # The paper's schedule: 3,000 iterations of batch 4 at 256 px, decayed x0.8 every 300.
    "paper": StyleTrainConfig(lr=LEARNING_RATES["paper"]["residual"]),
    # 160 px crops, 800 iterations: meant for 15 minutes on 2 CPU cores with native bfloat16 (6 to 10 measured,
    # pretrained/TRAINING.md and README) and 30 without (22 measured on a 2-core Xeon without AVX-512 BF16).
    "cpu": StyleTrainConfig(size=160, batch=4, iters=800, lr=LEARNING_RATES["cpu"]["residual"], decay_start=400,
                            decay_every=100, bf16=None, minutes_budget=15, float32_minutes_budget=30),
}


def gram_style_weight(training: dict) -> float:
    """The Gram loss's weight for a net of this training record (a model's "config"): its own, or
    the default for a net trained with another style loss, whose weight is on that loss's scale."""
    if training.get("loss", "gram") != "gram":
        return StyleTrainConfig.style_weight
    return training.get("style_weight", StyleTrainConfig.style_weight)


# The sliced Wasserstein loss's weight that pushes as hard as the Gram loss at 1e-4: their gradients'
# norms on night-cafe's built-in net's results (160 px training crops) were 634 at weight 1 and 4,382.
SW_STYLE_WEIGHT = 7.0


def style_preset(name: str, variant: str | None = None, loss: str = "gram") -> StyleTrainConfig:
    """A preset, with another network (a stylizer.VARIANTS name) and that network's learning rate,
    and another style loss at its weight."""
    preset = STYLE_PRESETS[name]
    if loss == "sw":
        preset = replace(preset, loss="sw", style_weight=SW_STYLE_WEIGHT)
    if variant is None:
        return preset
    generator = VARIANTS[variant]
    return replace(preset, generator=generator, lr=LEARNING_RATES[name][generator.architecture])


def read_photo(path: Path, unreadable: set[Path]) -> Image.Image | None:
    """The photo, or None (reported once per process) if it cannot be read."""
    if path in unreadable:
        return None
    try:
        return load_image(path)
    except TexnetError as error:
        unreadable.add(path)
        tqdm.write(f"texnet: skipping {error}")
        return None


class ContentCrops(Dataset):
    """Crop number i of a run: a size x size crop of a photo, both drawn from (seed, i) alone.
    Photos are decoded only when drawn, so a folder of thousands costs no memory; an unreadable
    photo is skipped (reported once) and another drawn in its place."""

    def __init__(self, files: list[Path], size: int, seed: int):
        if not files:
            raise TexnetError("no photos to train on: the content folder holds no images")
        self.files, self.size, self.seed = list(files), size, seed
        self.unreadable: set[Path] = set()

    def __len__(self) -> int:  # crops are drawn by index without end; DataLoader asks
        return 2 ** 62

    def __getitem__(self, index: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, index])
        while len(self.unreadable) < len(self.files):
            photo = read_photo(self.files[int(rng.integers(len(self.files)))], self.unreadable)
            if photo is not None:
                return random_crop(photo, self.size, rng)[0]
        raise TexnetError("none of the photos in the content folder can be read")


class StepIndices:
    """The crop indices each step of this process takes: step t of a run with global batch B
    takes crops t*B ... t*B+B-1, and each process its share of them."""

    def __init__(self, first_step: int, batch: int, share: slice):
        self.first_step, self.batch, self.share = first_step, batch, share

    def __iter__(self) -> Iterator[list[int]]:
        step = self.first_step
        while True:
            yield list(range(step * self.batch, (step + 1) * self.batch))[self.share]
            step += 1


def per_style_loss(targets: list[SlicedWassersteinTarget], features: dict[str, torch.Tensor], which: torch.Tensor,
                   rng: torch.Generator) -> torch.Tensor:
    """Per-sample sliced Wasserstein loss, shape (B,), each sample against `targets[which[i]]`."""
    styles = which.unique()
    groups = [torch.nonzero(which == style).flatten() for style in styles]
    losses = [targets[style].loss({name: value[group] for name, value in features.items()}, rng)
              for style, group in zip(styles.tolist(), groups)]
    return torch.cat(losses)[torch.argsort(torch.cat(groups))]  # back in the batch's order


def random_crop(photo: Image.Image, size: int, rng: np.random.Generator) -> torch.Tensor:
    """A size x size crop at a random scale: the shorter side is resized to between size and
    2 * size (or the photo's own), so strokes meet objects at several sizes."""
    shorter = min(photo.size)
    target = int(rng.integers(size, max(size, min(shorter, 2 * size)) + 1))
    scale = target / shorter
    photo = photo.resize((max(size, round(photo.width * scale)), max(size, round(photo.height * scale))),
                         Image.Resampling.BILINEAR)
    left = int(rng.integers(photo.width - size + 1))
    top = int(rng.integers(photo.height - size + 1))
    return image_to_tensor(photo.crop((left, top, left + size, top + size)))


def next_frame(photos: torch.Tensor, rng: torch.Generator) -> torch.Tensor:
    """A plausible next video frame of each photo: moved by up to 2 px and with fresh sensor
    noise, as consecutive frames of a handheld clip differ (no optical flow needed)."""
    shift = [int(value) for value in torch.randint(-2, 3, (2,), generator=rng)]
    moved = torch.roll(photos, shifts=shift, dims=(-2, -1))
    noise = torch.randn(photos.shape, generator=rng).to(photos.device) * 0.02
    return (moved + noise).clamp(0, 1)


def split_photos(folder: str | Path) -> tuple[list[Path], list[Path]]:
    """(training photos, held-out preview photos): the first few by name are held out when the
    folder has at least ten per held-out photo; tiny folders preview training photos."""
    files = image_files(folder)
    held_out = min(PREVIEW_PHOTOS, len(files) // 10)
    return files[held_out:], files[:held_out] or files[:PREVIEW_PHOTOS]


class StyleTrainer(Trainer):
    model_class = Stylizer

    def __init__(self, styles: Image.Image | dict[str, Image.Image], content_folder: str | Path, output: Path,
                 config: StyleTrainConfig = StyleTrainConfig(), descriptor=None, device="cpu", progress: bool = True):
        if isinstance(styles, Image.Image):
            styles = {"style": styles}
        if not styles:
            raise TexnetError("give at least one painting to train on")
        config = replace(config, generator=replace(config.generator, styles=len(styles)))
        if config.generator.content_channels != 3:
            raise TexnetError("a stylization network needs content_channels=3 (see stylizer.VARIANTS)")
        super().__init__(config, output, device, progress, min_size=32)
        self.names = list(styles)
        self.paintings = [resize_to_fit(painting, config.style_size) for painting in styles.values()]
        train_files, preview_files = split_photos(content_folder)
        self.crops = ContentCrops(train_files, config.size, config.seed)
        # Read now, not after hours of training: a corrupt preview photo is skipped, never fatal.
        self.previews = [photo for path in preview_files if (photo := read_photo(path, set())) is not None]
        self.descriptor = training_descriptor(descriptor, (*TEXTURE_LAYERS, CONTENT_LAYER), self.bf16, self.device)
        # The content target needs VGG only up to relu4_2: a view of the same weights that stops there.
        self.content_descriptor = copy.copy(self.descriptor)
        self.content_descriptor.layers = (CONTENT_LAYER,)
        paintings = [image_to_tensor(p).to(self.device) for p in self.paintings]
        self.target = self.style_target(paintings)
        self.colours = [colour_target(painting) for painting in paintings] if config.histogram else None
        self.batches: Iterator[torch.Tensor] | None = None  # opened at the first step, after any resume
        self.terms = (float("nan"), float("nan"))  # (style, content) of the last step, for the record

    def next_photos(self) -> torch.Tensor:
        if self.batches is None:
            indices = StepIndices(self.iteration, self.config.batch, self.share)
            self.batches = iter(DataLoader(self.crops, batch_sampler=indices, num_workers=self.config.workers,
                                           persistent_workers=self.config.workers > 0))
        return next(self.batches).to(self.device)

    def loss(self) -> torch.Tensor:
        config = self.config
        photos = self.next_photos()
        # Each crop's style follows its global index, so every style gets its turn in every batch.
        first = self.iteration * config.batch + self.share.start
        which = (torch.arange(first, first + len(photos)) % len(self.names)).to(self.device)
        style = torch.nn.functional.one_hot(which, len(self.names)).float()
        noise = [scale[self.share] for scale in
                 self.net.make_noise(config.batch, config.size, config.size, self.rng, self.device)]
        with torch.no_grad():
            content_target = self.content_descriptor(photos)[CONTENT_LAYER]
        if config.temporal_weight:
            frames = next_frame(photos, self.rng)
            results, moved = self.generate([torch.cat([z, z]) for z in noise] or None,
                                           torch.cat([photos, frames]), torch.cat([style, style])).chunk(2)
            # What changes between frames in the output should be what changed in the input.
            temporal = ((moved - results) - (frames - photos)).pow(2).mean()
        else:
            results, temporal = self.generate(noise or None, photos, style), 0.0
        features = self.descriptor(results)
        style_loss = self.style_loss(features, which).mean()
        content = content_loss(features[CONTENT_LAYER], content_target).mean()
        self.terms = (float(style_loss.detach()), float(content.detach()))
        total = config.style_weight * style_loss + config.content_weight * content + config.temporal_weight * temporal
        if self.colours is not None:
            colours = per_style_loss(self.colours, {"pixels": results}, which, self.rng)
            total = total + config.histogram * colours.mean()
        return total

    def style_target(self, paintings: list[torch.Tensor]):
        """The Gram loss's target, all paintings stacked, or one sliced Wasserstein target per painting."""
        if self.config.loss == "gram":
            return TextureTarget.from_images(self.descriptor, paintings, dict.fromkeys(TEXTURE_LAYERS, 1.0))
        # On the Gram loss's layers, not Heitz et al.'s 12: sorting those took 2.2 s per step of 4 crops
        # of 160 px on 2 cores, against 1 s.
        descriptor = copy.copy(self.descriptor)
        descriptor.layers = TEXTURE_LAYERS
        return [SlicedWassersteinTarget.from_image(descriptor, painting) for painting in paintings]

    def style_loss(self, features: dict[str, torch.Tensor], which: torch.Tensor) -> torch.Tensor:
        """Per-sample style loss, shape (B,), each sample against the painting `which` names."""
        if self.config.loss == "gram":
            return self.target.loss(features, which)
        return per_style_loss(self.target, features, which, self.rng)

    def finish(self):
        self.batches = None  # ends the loader's worker processes
        return super().finish()

    def data_digest(self) -> str:
        record = "".join(f"{name}:{image_digest(painting)}\n" for name, painting in zip(self.names, self.paintings))
        names = "\n".join(path.name for path in self.crops.files)
        return hashlib.sha256((record + names).encode()).hexdigest()

    def model(self) -> Stylizer:
        info = {**self.training_info(), "styles": self.names,
                "style_sha256": [image_digest(painting) for painting in self.paintings],
                "style_size": [list(painting.size) for painting in self.paintings],
                "final_style_loss": self.terms[0], "final_content_loss": self.terms[1],
                "content_photos": len(self.crops.files)}
        model = Stylizer(self.final_net, info)
        model.paintings = self.paintings  # saved beside the weights: what `Stylizer.refined` fits to
        return model

    def write_previews(self, model: Stylizer) -> None:
        if self.previews:
            photos = [resize_to_fit(photo, self.config.size * 2) for photo in self.previews]
            before_after_grid(model, photos).save(self.output / "before-after.png")


def before_after_grid(model: Stylizer, photos: list[Image.Image], gap: int = 8) -> Image.Image:
    """Photos on the top row, their stylized versions below (one row per style of a multi-style model)."""
    styles = model.style_names() if model.config.styles > 1 else [None]
    rows = [photos] + [[model.stylize(photo, style=style) for photo in photos] for style in styles]
    width = sum(photo.width for photo in photos) + gap * (len(photos) - 1)
    height = max(photo.height for photo in photos)
    grid = Image.new("RGB", (width, len(rows) * (height + gap) - gap), "white")
    for row, images in enumerate(rows):
        left = 0
        for image in images:
            grid.paste(image, (left, row * (height + gap)))
            left += image.width + gap
    return grid


def train_style(styles: Image.Image | dict[str, Image.Image], content_folder: str | Path, output: str | Path,
                config: StyleTrainConfig = StyleTrainConfig(), resume: bool = False, device="cpu",
                descriptor=None, progress: bool = True) -> Stylizer:
    """Train a stylization network for a painting (or {name: painting} for several in one net) on
    crops of the photos in `content_folder` and save it (with checkpoint, loss curve and
    before/after grid) in `output`."""
    trainer = StyleTrainer(styles, content_folder, Path(output), config, descriptor, device, progress)
    return trainer.train(resume)
