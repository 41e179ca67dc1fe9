"""Stylizing photos in one forward pass: `Stylizer.from_pretrained("starry-night").stylize(photo)`.

A stylization network takes the photo as input (Ulyanov et al. 2016, section 4). Variants:
- "residual": Johnson et al.'s encoder, residual blocks at a quarter of the resolution and
  decoder (the texture_nets authors' own choice for stylization);
- "improved": the texture pyramid with the photo at every scale, instance normalisation and no
  noise (Improved Texture Networks, CVPR 2017);
- "paper": the same with 3 noise channels and batch normalisation (ICML 2016).
Reflection padding keeps the photo's borders free of the dark frame zero padding leaves. A net
trained on several paintings holds one row of normalisation parameters per style; a blend of
styles mixes the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image

from .errors import TexnetError
from .generator_config import GeneratorConfig
from .image_io import as_rgb_image, resize_to_fit, to_uint8
from .model_files import PretrainedGenerator
from .noise import batch_noise, noise_rows
from .outputs import PAINTING_FILE
from .runtime import native_bf16_cpu
from .sampling import check_seed

VARIANTS = {
    # Johnson et al.'s layout at 12-24-48 channels without its full-resolution layers, 3x3 in and
    # out: in the README's architecture study 16% more held-out Gram loss and 16% less content loss
    # than 16-32-64 with them, and twice as fast (the speed target of issue 12).
    "residual": GeneratorConfig(architecture="residual", channels=12, blocks=5, edge_kernel=3, noise_channels=0,
                                content_channels=3, norm="instance", padding="reflect",
                                full_resolution_layers=False),
    "improved": GeneratorConfig(noise_channels=0, content_channels=3, norm="instance", padding="reflect"),
    "paper": GeneratorConfig(noise_channels=3, content_channels=3, norm="batch", padding="reflect"),
}
STROKE_SCALES = (0.25, 4.0)
# PyTorch bfloat16 saves about 67 ms per megapixel against onnxruntime on an AMX Xeon (266 against
# 336 ms at 1024x1024) and 112 ms on an AVX-512 BF16 EPYC (174 against 286 ms; README, "Speed and
# memory"): its start of about 1.1 s is paid back from 16 megapixels on the first, 10 on the second.
BF16_PAYS_OFF_MEGAPIXELS = 16


class Stylizer(PretrainedGenerator):
    """A trained stylization network plus what it was trained on."""

    kind = "style"
    paintings: list[Image.Image] | None = None  # training sets them; a loaded model reads them from its folder

    def backend_for_many(self, requested: str, bf16: bool | None, megapixels: Callable[[], float]) -> str:
        """The backend for a job of `megapixels()` in all (photos or frames): PyTorch in native
        bfloat16 where it beats onnxruntime for this net (the residual net on CPUs with AVX-512 BF16
        or AMX, 20% to 40% less time) and the job is large enough to pay PyTorch's start of about
        1.1 s; else `requested`.
        The job's size is read (from file headers) only where the rest allows PyTorch."""
        if (requested == "auto" and bf16 is None and self.config.architecture == "residual" and native_bf16_cpu()
                and megapixels() >= BF16_PAYS_OFF_MEGAPIXELS):
            return "torch"
        return requested

    def check_config(self, config: GeneratorConfig) -> None:
        if config.content_channels != 3:
            raise TexnetError("a stylization network takes a photo; this one is a texture network")

    @classmethod
    def for_style(cls, style: str | None, model: str | None = None, device="cpu") -> tuple["Stylizer", str | None]:
        """(model, style) for a style given by name: with `model`, a style (or blend) of it;
        without, a style model's name or folder, or a style (or blend) of a built-in
        multi-style model that holds it."""
        from .model_files import builtin_models, read_config

        if model is not None:
            return cls.from_pretrained(model, device), style
        if style is None:
            raise TexnetError("name a style (or a style model)")
        if Path(style).is_dir() or style in builtin_models("style"):
            return cls.from_pretrained(style, device), None
        wanted = set(parse_blend(style))
        for name, folder in builtin_models("style").items():
            if wanted <= set(read_config(folder).get("training", {}).get("styles", [])):
                return cls.from_pretrained(name, device), style
        raise TexnetError(f"no style '{style}' among the built-in models (see `texnet models`)")

    def style_names(self) -> list[str]:
        names = self.info.get("styles")
        valid = isinstance(names, list) and len(names) == self.config.styles and all(isinstance(n, str) for n in names)
        return names if valid else [f"style-{index}" for index in range(self.config.styles)]

    def style_weights(self, style) -> np.ndarray | None:
        """The style weights for `style`: a name, a blend such as "a:0.5,b:0.5" (weights are
        normalised to sum to 1), or {name: weight}; None for a single-style model."""
        names = self.style_names()
        if self.config.styles == 1:
            if style is not None and style not in names:
                raise TexnetError("this model holds one style; leave the style out")
            return None
        if style is None:
            raise TexnetError(f"this model holds {len(names)} styles: choose one or a blend of {', '.join(names)}")
        blend = parse_blend(style) if isinstance(style, str) else dict(style)
        weights = np.zeros(len(names), np.float32)
        for name, weight in blend.items():
            if name not in names:
                raise TexnetError(f"no style '{name}' in this model; it holds {', '.join(names)}")
            if not isinstance(weight, (int, float)) or not np.isfinite(weight) or weight < 0:
                raise TexnetError(f"style weight of '{name}' must be a number of at least 0, not {weight!r}")
            weights[names.index(name)] += weight
        if weights.sum() <= 0:
            raise TexnetError("the style weights must add up to more than 0")
        return weights / weights.sum()

    def seed_for(self, seed: int | None) -> int:
        """The noise seed; a seed for a net without noise would silently change nothing, so it is refused."""
        if seed is None:
            return 0
        if not self.config.noise_channels:
            raise TexnetError("this style model has no noise input, so a seed changes nothing; leave it out")
        return check_seed(seed)

    def stylize(self, image, strength: float = 1.0, preserve_colors: bool = False, max_size: int | None = None,
                seed: int | None = None, bf16: bool | None = None, backend: str = "auto",
                memory_limit_mb: float | None = None, style=None, stroke_scale: float = 1.0) -> Image.Image:
        """The photo in this style, the same size as the photo (after `max_size`, if given).

        `image` is a PIL image, a NumPy array or a tensor (see image_io.as_rgb_image).
        `strength` in [0, 1] blends the result with the photo (0 gives the photo back);
        `preserve_colors` keeps the photo's colours and takes only the luminance of the result;
        `style`: for a multi-style model, a style name or a blend ("a:0.5,b:0.5");
        `stroke_scale` > 1 paints larger strokes, < 1 smaller ones (0.25 to 4): the net runs on
        the photo scaled by 1 / stroke_scale, and its result is scaled back to the photo's size;
        `backend`, `bf16` and `memory_limit_mb` as for TextureGenerator.sample: photos over the
        memory limit are stylized in exact strips.
        """
        if not isinstance(strength, (int, float)) or not 0 <= strength <= 1:
            raise TexnetError(f"strength must be between 0 and 1, not {strength!r}")
        photo, scaled = self.net_input(image, max_size, stroke_scale)
        seed = self.seed_for(seed)
        weights = self.style_weights(style)
        if strength == 0:
            return photo.copy()
        result = Image.fromarray(self.stylize_pixels(np.asarray(scaled), seed, bf16, backend, memory_limit_mb, weights))
        if result.size != photo.size:
            result = result.resize(photo.size, Image.Resampling.LANCZOS)
        if preserve_colors:
            result = keep_colors(result, photo)
        return result if strength == 1 else Image.blend(photo, result, strength)

    @staticmethod
    def net_input(image, max_size: int | None, stroke_scale: float) -> tuple[Image.Image, Image.Image]:
        """(the photo after `max_size`, the photo as the net sees it: scaled by 1 / `stroke_scale`)."""
        photo = as_rgb_image(image)
        if max_size is not None:
            if not isinstance(max_size, int) or max_size < 1:
                raise TexnetError(f"max size must be a whole number of pixels, at least 1, not {max_size!r}")
            photo = resize_to_fit(photo, max_size)
        low, high = STROKE_SCALES
        if not isinstance(stroke_scale, (int, float)) or not low <= stroke_scale <= high:
            raise TexnetError(f"stroke scale must be between {low:g} and {high:g}, not {stroke_scale!r}")
        scaled = photo if stroke_scale == 1 else photo.resize(
            (max(1, round(photo.width / stroke_scale)), max(1, round(photo.height / stroke_scale))),
            Image.Resampling.LANCZOS)
        return photo, scaled

    def refined(self, image, steps: int, painting: Image.Image | None = None, style: str | None = None,
                max_size: int | None = None, stroke_scale: float = 1.0, descriptor=None,
                bf16: bool | None = None) -> "Stylizer":
        """A copy of this model fitted to one photo by `steps` Adam steps on its training's loss
        (texnet.refine): its `stylize` of that photo, with the same `max_size`, `stroke_scale` and
        `style`, comes nearer the painting. `painting`: the painting to fit to (default: the one
        the model was trained on, kept in its folder); `style`: one style of a multi-style model;
        `bf16`: refine in bfloat16 autocast (default: where the hardware computes it natively,
        1.7x to 1.9x faster on AMX at the same quality: README, "Fitting each photo")."""
        import torch

        from .generators import bf16_is_fast
        from .image_io import image_to_tensor
        from .optimize import TransferWeights
        from .refine import refine_descriptor, refine_net
        from .style_training import StyleTrainConfig, gram_style_weight

        weights = self.style_weights(style)
        painting = self.painting_to_fit(style, painting)
        descriptor = descriptor or refine_descriptor()
        training = self.info.get("config", {})
        loss_weights = TransferWeights(style=gram_style_weight(training),
                                       content=training.get("content_weight", StyleTrainConfig.content_weight))
        net = refine_net(self.net, image_to_tensor(self.net_input(image, max_size, stroke_scale)[1]),
                         image_to_tensor(painting), loss_weights, steps, descriptor,
                         None if weights is None else torch.from_numpy(weights)[None], device=self.device,
                         bf16=bf16_is_fast(self.device) if bf16 is None else bf16)
        return Stylizer(net, self.info, device=self.device)

    def painting_to_fit(self, style: str | None, painting: Image.Image | None = None) -> Image.Image:
        """What `refined` fits `style` to: `painting` shrunk as training shrank paintings, or the
        painting the model was trained on. A blend has no one painting, so it is refused."""
        weights = self.style_weights(style)
        if weights is not None and np.count_nonzero(weights) > 1:
            raise TexnetError("refining fits one style: name one, not a blend")
        if painting is not None:
            return resize_to_fit(as_rgb_image(painting), self.style_size())
        return self.painting(style if weights is not None else self.style_names()[0])

    def style_size(self) -> int:
        """The longer side paintings were shrunk to in training."""
        size = self.info.get("config", {}).get("style_size", 256)
        return size if isinstance(size, int) and size > 0 else 256

    def painting(self, name: str) -> Image.Image:
        """The painting of style `name` as training's loss saw it, from the model folder, checked
        against the training record's digest."""
        from .image_io import load_image
        from .sampling import image_digest

        index = self.style_names().index(name)
        if self.paintings is not None:
            return self.paintings[index]
        path = None if self.folder is None else self.folder / PAINTING_FILE.format(index)
        if path is None or not path.is_file():
            raise TexnetError(f"this model keeps no copy of the painting of '{name}' (it was trained before models "
                              "kept one): give it with --painting")
        painting = load_image(path)
        digests = self.info.get("style_sha256") or []
        if index >= len(digests) or image_digest(painting) != digests[index]:
            raise TexnetError(f"{path} is not the painting this model was trained on (its digest differs)")
        return painting

    def save_pretrained(self, folder: str | Path) -> Path:
        """The model files, and the paintings it was trained on (for `refined`) where it has them."""
        from .atomic_write import write_atomically

        folder = super().save_pretrained(folder)
        for index, painting in enumerate(self.paintings or []):
            write_atomically(folder / PAINTING_FILE.format(index),
                             lambda path, painting=painting: painting.save(path, format="PNG"))
        return folder

    def stylize_tensor(self, content, seed: int | None = None, bf16: bool | None = None, backend: str = "auto",
                       style=None):
        """(B, 3, H, W) in [0, 1] -> the stylized batch as a float tensor, exactly (B, 3, H, W), in one pass."""
        import torch

        height, width = content.shape[-2:]
        padded = edge_pad(content.detach().float().cpu().numpy(), self.config.min_side)
        chosen = self.backend(backend, padded.shape[-2] * padded.shape[-1] * len(padded), bf16=bf16)
        inputs = self.inputs(padded, self.seed_for(seed), len(padded), self.style_weights(style))
        return torch.from_numpy(np.ascontiguousarray(self.run(inputs, chosen, bf16)[..., :height, :width]))

    def inputs(self, content: np.ndarray, seed: int, batch: int, weights: np.ndarray | None) -> list[np.ndarray]:
        """The net's inputs for a batch of photos, in the order of GeneratorConfig.input_names."""
        noise = []
        if self.config.noise_channels:
            sizes = self.config.scale_sizes(*content.shape[-2:])
            noise = batch_noise([seed + index for index in range(batch)], sizes, self.config.noise_channels)
        style = [] if weights is None else [np.tile(weights, (batch, 1))]
        return [content] + noise + style

    def stylize_pixels(self, photo: np.ndarray, seed: int, bf16: bool | None, backend: str,
                       memory_limit_mb: float | None, weights: np.ndarray | None = None) -> np.ndarray:
        """(H, W, 3) uint8 -> the stylized (H, W, 3) uint8: in one pass, or in exact strips (PyTorch)
        where one pass would not fit in the memory limit. Photos smaller than the coarsest scale
        allows are edge-padded, then cropped."""
        height, width = photo.shape[:2]
        padded = edge_pad(photo.transpose(2, 0, 1)[None], self.config.min_side)[0]
        pixels = padded.shape[-2] * padded.shape[-1]
        plan = self.plan(backend, pixels, memory_limit_mb, bf16, f"a {width}x{height} photo")
        if plan.fits(pixels):
            content = padded[None].astype(np.float32) / 255
            output = self.run(self.inputs(content, seed, 1, weights), plan.backend, bf16)[0]
            return to_uint8(output[:, :height, :width]).transpose(1, 2, 0)
        return self.stylize_in_strips(padded, seed, plan.budget, bf16, weights)[:height, :width]

    def stylize_in_strips(self, photo: np.ndarray, seed: int, budget: int, bf16: bool | None,
                          weights: np.ndarray | None) -> np.ndarray:
        import torch

        from .strips import content_rows

        channels, height, width = photo.shape
        sizes = self.config.scale_sizes(height, width)
        photo_rows = torch.from_numpy(np.ascontiguousarray(photo))[None]
        out = np.empty((height, width, 3), np.uint8)

        def inputs(scale: int, start: int, stop: int):
            rows = content_rows(photo_rows, scale, start, stop)
            if not self.config.noise_channels:
                return rows
            noise = noise_rows(seed, scale, self.config.noise_channels, sizes[scale][1], start, stop)
            return torch.cat([rows, torch.from_numpy(noise)[None]], dim=1)

        def write(start: int, stop: int, rgb) -> None:
            out[start:stop] = to_uint8(rgb.numpy()).transpose(1, 2, 0)

        self.runner("torch").run_in_strips(inputs, height, width, budget, write, bf16,
                                           None if weights is None else weights[None])
        return out


def parse_blend(text: str) -> dict[str, float]:
    """"a" -> {a: 1}; "a:0.5,b:0.5" -> {a: 0.5, b: 0.5}."""
    blend = {}
    for part in text.split(","):
        name, _, weight = part.strip().partition(":")
        try:
            blend[name.strip()] = blend.get(name.strip(), 0.0) + (float(weight) if weight else 1.0)
        except ValueError:
            raise TexnetError(f"style '{text}': expected NAME or NAME:WEIGHT,NAME:WEIGHT, ...") from None
    return blend


def edge_pad(images: np.ndarray, min_side: int) -> np.ndarray:
    """(B, C, H, W) with each side grown to at least `min_side` by repeating the edge pixels."""
    height, width = images.shape[-2:]
    extra = ((0, 0), (0, 0), (0, max(0, min_side - height)), (0, max(0, min_side - width)))
    return np.pad(images, extra, mode="edge") if any(pad for _, pad in extra) else images


def keep_colors(stylized: Image.Image, photo: Image.Image) -> Image.Image:
    """The luminance of `stylized` with the chroma of `photo` (Gatys et al. 2016, "Preserving
    colour in neural artistic style transfer", luminance-only transfer)."""
    luminance = stylized.convert("YCbCr").getchannel("Y")
    _, blue, red = photo.convert("YCbCr").split()
    return Image.merge("YCbCr", (luminance, blue, red)).convert("RGB")
