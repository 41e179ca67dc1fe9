"""Training a stylization network for one painting (Ulyanov et al. 2016, section 4).

Each step stylizes a batch of random crops of photos and is scored by the painting's Gram
matrices (style) and the photos' own relu4_2 activations (content): the objective of the Gatys
baseline `texnet transfer`, whose results the benchmark compares with the same weights. Photos
are read from disk as they are drawn: a folder of thousands never sits in memory.
"""

from __future__ import annotations

import copy
import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import torch
from PIL import Image
from tqdm.auto import tqdm

from .descriptor import CONTENT_LAYER, TEXTURE_LAYERS
from .errors import TexnetError
from .generators import GeneratorConfig
from .image_io import image_files, image_to_tensor, load_image, resize_to_fit
from .losses import TextureTarget, content_loss
from .sampling import image_digest
from .stylizer import VARIANTS, Stylizer
from .training import RunConfig, Trainer, training_descriptor

PREVIEW_PHOTOS = 4  # held out of training, shown before/after in the model folder


@dataclass
class StyleTrainConfig(RunConfig):
    batch: int = 4
    iters: int = 3000
    lr_decay: float = 0.8
    decay_start: int = 300
    generator: GeneratorConfig = field(default_factory=lambda: copy.copy(VARIANTS["improved"]))
    style_weight: float = 1e-4  # the Gatys baseline uses 1e-3; see the README on why training wants less
    content_weight: float = 1.0
    style_size: int = 256  # the painting is shrunk to this longer side: it sets the brush-stroke scale


STYLE_PRESETS = {
    # The paper's recipe: 3,000 iterations of batch 4 at 256 px, lr 0.1 decayed x0.8 every 300.
    "paper": StyleTrainConfig(),
    # About 13 minutes on 2 CPU cores (pretrained/TRAINING.md): 160 px crops, 800 iterations, bf16.
    "cpu": StyleTrainConfig(size=160, batch=4, iters=800, lr=0.05, decay_start=400, decay_every=100, bf16=None),
}


class ContentCrops:
    """Random size x size crops of random photos, decoded only when drawn. Unreadable photos
    are skipped (and reported once); training stops only if none can be read."""

    def __init__(self, files: list[Path], size: int):
        if not files:
            raise TexnetError("no photos to train on: the content folder holds no images")
        self.files, self.size, self.unreadable = list(files), size, set()
        self.readable = set(self.files)  # not yet found unreadable

    def batch(self, count: int, rng: torch.Generator) -> torch.Tensor:
        return torch.cat([self.crop(rng) for _ in range(count)])

    def crop(self, rng: torch.Generator) -> torch.Tensor:
        while self.readable:
            photo = self.read(self.files[int(torch.randint(len(self.files), (1,), generator=rng))])
            if photo is not None:
                return random_crop(photo, self.size, rng)
        raise TexnetError("none of the photos in the content folder can be read")

    def read(self, path: Path) -> Image.Image | None:
        """The photo, or None (reported once) if it cannot be read."""
        if path in self.unreadable:
            return None
        try:
            return load_image(path)
        except TexnetError as error:
            self.unreadable.add(path)
            self.readable.discard(path)
            tqdm.write(f"texnet: skipping {error}")
            return None


def random_crop(photo: Image.Image, size: int, rng: torch.Generator) -> torch.Tensor:
    """A size x size crop at a random scale: the shorter side is resized to between size and
    2 * size (or the photo's own), so strokes meet objects at several sizes."""
    shorter = min(photo.size)
    target = int(torch.randint(size, max(size, min(shorter, 2 * size)) + 1, (1,), generator=rng))
    scale = target / shorter
    photo = photo.resize((max(size, round(photo.width * scale)), max(size, round(photo.height * scale))),
                         Image.Resampling.BILINEAR)
    left = int(torch.randint(photo.width - size + 1, (1,), generator=rng))
    top = int(torch.randint(photo.height - size + 1, (1,), generator=rng))
    return image_to_tensor(photo.crop((left, top, left + size, top + size)))


def split_photos(folder: str | Path) -> tuple[list[Path], list[Path]]:
    """(training photos, held-out preview photos): the first few by name are held out when the
    folder has at least ten per held-out photo; tiny folders preview training photos."""
    files = image_files(folder)
    held_out = min(PREVIEW_PHOTOS, len(files) // 10)
    return files[held_out:], files[:held_out] or files[:PREVIEW_PHOTOS]


class StyleTrainer(Trainer):
    def __init__(self, style: Image.Image, content_folder: str | Path, output: Path,
                 config: StyleTrainConfig = StyleTrainConfig(), descriptor=None, device="cpu", progress: bool = True):
        if config.generator.content_channels != 3:
            raise TexnetError("a stylization network needs content_channels=3 (see stylizer.VARIANTS)")
        super().__init__(config, output, device, progress, min_size=32)
        self.style = resize_to_fit(style, config.style_size)
        train_files, preview_files = split_photos(content_folder)
        self.crops = ContentCrops(train_files, config.size)
        # Read now, not after hours of training: a corrupt preview photo is skipped, never fatal.
        self.previews = [photo for photo in map(self.crops.read, preview_files) if photo is not None]
        self.descriptor = training_descriptor(descriptor, (*TEXTURE_LAYERS, CONTENT_LAYER), self.bf16, self.device)
        # The content target needs VGG only up to relu4_2: a view of the same weights that stops there.
        self.content_descriptor = copy.copy(self.descriptor)
        self.content_descriptor.layers = (CONTENT_LAYER,)
        self.target = TextureTarget.from_image(self.descriptor, image_to_tensor(self.style).to(self.device),
                                               {name: 1.0 for name in TEXTURE_LAYERS})
        self.terms = (float("nan"), float("nan"))  # (style, content) of the last step, for the record

    def loss(self) -> torch.Tensor:
        config = self.config
        photos = self.crops.batch(config.batch, self.rng).to(self.device)
        noise = self.net.make_noise(config.batch, config.size, config.size, self.rng, self.device)
        with torch.no_grad():
            content_target = self.content_descriptor(photos)[CONTENT_LAYER]
        features = self.descriptor(self.generate(noise, photos))
        style = self.target.loss(features).mean()
        content = content_loss(features[CONTENT_LAYER], content_target).mean()
        self.terms = (float(style.detach()), float(content.detach()))
        return config.style_weight * style + config.content_weight * content

    def data_digest(self) -> str:
        names = "\n".join(path.name for path in self.crops.files)
        return hashlib.sha256((image_digest(self.style) + names).encode()).hexdigest()

    def model(self) -> Stylizer:
        info = {**self.training_info(), "style_sha256": image_digest(self.style), "style_size": list(self.style.size),
                "final_style_loss": self.terms[0], "final_content_loss": self.terms[1],
                "content_photos": len(self.crops.files)}
        return Stylizer(self.net, info)

    def write_previews(self, model: Stylizer) -> None:
        if self.previews:
            photos = [resize_to_fit(photo, self.config.size * 2) for photo in self.previews]
            before_after_grid(model, photos).save(self.output / "before-after.png")


def before_after_grid(model: Stylizer, photos: list[Image.Image], gap: int = 8) -> Image.Image:
    """Photos on the top row, their stylized versions below."""
    results = [model.stylize(photo) for photo in photos]
    width = sum(photo.width for photo in photos) + gap * (len(photos) - 1)
    height = max(photo.height for photo in photos)
    grid = Image.new("RGB", (width, 2 * height + gap), "white")
    left = 0
    for photo, result in zip(photos, results):
        grid.paste(photo, (left, 0))
        grid.paste(result, (left, height + gap))
        left += photo.width + gap
    return grid


def train_style(style: Image.Image, content_folder: str | Path, output: str | Path,
                config: StyleTrainConfig = StyleTrainConfig(), resume: bool = False, device="cpu",
                descriptor=None, progress: bool = True) -> Stylizer:
    """Train a stylization network for the painting `style` on crops of the photos in
    `content_folder` and save it (with checkpoint, loss curve and before/after grid) in `output`."""
    trainer = StyleTrainer(style, content_folder, Path(output), config, descriptor, device, progress)
    return trainer.train(resume)
