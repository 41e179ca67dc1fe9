"""A fair quality report for textures: statistics neither the generator nor Gatys optimised.

Both methods fit the Gram matrices of one particular resampling of the example; scored against
that same target, Gatys looks 20x better than it is (issue 10). So every measure here compares
with *held-out* versions of the example (other resampling filters, slightly other scales, other
crops) or uses no network at all:

- held-out Gram loss: the texture loss against each held-out target, averaged;
- sliced Wasserstein distance of VGG features (Heitz et al. 2021), with fixed random
  projections, averaged over several draws and the held-out targets;
- structure: distance between the luminance autocorrelations of sample and example over lags
  up to a quarter of the smaller image, weight-free: it sees lost brick courses and weave grids;
- diversity: mean pairwise VGG-feature distance between samples over the same between crops
  of the example (1 = as varied as the example);
- seam: the jump across the wrap-around edge over the jump across interior rows and columns of
  the same phase on the generator's coarsest grid (1 = the edge cannot be told apart);
- blobs: the share of pixels in blobs (at least 5x5) darker or lighter than 99.9% of the
  example's pixels, over and above the example's own: saturated ovals and coarse-scale droplets;
- droplets (models only): the smooth ovals inside the example's colour range that the blob
  measure misses, seen inside the net (texnet.droplets).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from .descriptor import TEXTURE_LAYERS, VGG19Descriptor
from .image_io import image_to_tensor, resize_to_fit
from .losses import TextureTarget

SW_DRAWS = 4  # sets of fixed projections
MAX_LAG_FRACTION = 4  # autocorrelation lags up to 1/4 of the smaller side


@dataclass
class QualityReport:
    held_out_gram: float
    sliced_wasserstein: float
    structure: float
    diversity: float | None  # None for a single image
    seam: float | None  # None for images that are not meant to tile
    blobs: float
    droplets: float | None = None  # None for images: only a model's own maps show them

    def as_dict(self) -> dict:
        return asdict(self)


def held_out_targets(original: Image.Image, example_size: int = 256) -> list[Image.Image]:
    """Versions of the example that training never saw: another filter at the training size,
    two slightly other scales, and the four corner crops of three quarters."""
    trained = resize_to_fit(original, example_size)
    width, height = trained.size

    def resized(scale: float, method) -> Image.Image:
        return original.resize((max(32, round(width * scale)), max(32, round(height * scale))), method)

    crop_w, crop_h = max(32, width * 3 // 4), max(32, height * 3 // 4)
    corners = [(0, 0), (width - crop_w, 0), (0, height - crop_h), (width - crop_w, height - crop_h)]
    return ([resized(1.0, Image.Resampling.BICUBIC), resized(0.93, Image.Resampling.BOX),
             resized(1.07, Image.Resampling.BILINEAR)]
            + [trained.crop((left, top, left + crop_w, top + crop_h)) for left, top in corners])


def held_out_gram_scorer(descriptor: VGG19Descriptor, original: Image.Image,
                         example_size: int = 256) -> Callable[[torch.Tensor], float]:
    """A function of a sample batch (N, 3, H, W) giving its mean Gram loss against the held-out
    targets of `original`, whose Gram matrices are computed once."""
    targets = [TextureTarget.from_image(descriptor, image_to_tensor(target))
               for target in held_out_targets(original, example_size)]

    @torch.no_grad()
    def score(samples: torch.Tensor) -> float:
        return mean_gram_loss(targets, descriptor(samples))

    return score


def mean_gram_loss(targets: list[TextureTarget], features: dict[str, torch.Tensor]) -> float:
    """The Gram loss of a batch's features, averaged over its samples and the held-out targets."""
    return float(np.mean([target.loss(features).mean().item() for target in targets]))


def sorted_projections(features: torch.Tensor, directions: torch.Tensor, count: int) -> torch.Tensor:
    """(B, C, H, W) features projected on (P, C) directions, pooled over the batch, sorted, and
    resampled to `count` quantiles (so maps of different sizes compare)."""
    flat = features.transpose(0, 1).reshape(features.shape[1], -1)  # (C, N)
    projected = torch.sort(directions @ flat, dim=1).values  # (P, N)
    positions = torch.linspace(0, projected.shape[1] - 1, count)
    low, high = positions.floor().long(), positions.ceil().long()
    weight = positions - low
    return projected[:, low] * (1 - weight) + projected[:, high] * weight


@torch.no_grad()
def sliced_wasserstein(descriptor: VGG19Descriptor, samples: torch.Tensor, targets: list[Image.Image],
                       draws: int = SW_DRAWS, quantiles: int = 1024) -> float:
    """Mean over layers, draws and targets of the squared distance between sorted projections
    (Heitz et al. 2021), with as many fixed directions per layer as the layer has channels."""
    target_features = [descriptor(image_to_tensor(target)) for target in targets]
    return sliced_wasserstein_of_features(descriptor(samples), target_features, descriptor.layers, draws, quantiles)


def sliced_wasserstein_of_features(sample_features: dict[str, torch.Tensor], target_features: list[dict],
                                   layers, draws: int = SW_DRAWS, quantiles: int = 1024) -> float:
    """sliced_wasserstein on features already computed (the targets' are reused across results)."""
    distances = []
    for index, name in enumerate(layers):
        channels = sample_features[name].shape[1]
        for draw in range(draws):
            generator = torch.Generator().manual_seed(1000 * draw + index)
            directions = F.normalize(torch.randn(channels, channels, generator=generator), dim=1)
            mine = sorted_projections(sample_features[name], directions, quantiles)
            for features in target_features:
                theirs = sorted_projections(features[name], directions, quantiles)
                distances.append((mine - theirs).pow(2).mean().item())
    return float(np.mean(distances))


def luminance(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 or float -> float64 luminance in [0, 1]."""
    values = image.astype(np.float64) / (255.0 if image.dtype == np.uint8 else 1.0)
    return values @ np.array([0.299, 0.587, 0.114])


def autocorrelation(gray: np.ndarray, max_lag: int) -> np.ndarray:
    """Normalised autocorrelation for lags in [-max_lag, max_lag]^2, each lag averaged over the
    pixel pairs that exist at it (zero padding, no wrap-around: the example does not tile)."""
    centred = gray - gray.mean()
    height, width = centred.shape
    shape = (2 * height, 2 * width)
    spectrum = np.fft.rfft2(centred, shape)
    raw = np.fft.irfft2(spectrum * np.conj(spectrum), shape)
    counts = np.fft.irfft2(np.abs(np.fft.rfft2(np.ones_like(centred), shape)) ** 2, shape)
    lags = np.r_[0: max_lag + 1, -max_lag: 0]
    window = (raw / np.maximum(counts, 1))[np.ix_(lags, lags)]
    return np.fft.fftshift(window / max(window[0, 0], 1e-12))


def spectral_centroid(image: Image.Image) -> float:
    """Mean spatial frequency of the luminance's power spectrum (cycles per pixel): lower for
    larger strokes or structures."""
    gray = np.asarray(image.convert("L"), dtype=float)
    power = np.abs(np.fft.fft2(gray - gray.mean())) ** 2
    fy, fx = np.meshgrid(np.fft.fftfreq(gray.shape[0]), np.fft.fftfreq(gray.shape[1]), indexing="ij")
    return float((np.hypot(fx, fy) * power).sum() / power.sum())


def structure_distance(samples: list[np.ndarray], example: np.ndarray) -> float:
    """Root mean square difference of the autocorrelations of samples (averaged) and example."""
    max_lag = min(*example.shape[:2], *samples[0].shape[:2]) // MAX_LAG_FRACTION
    theirs = autocorrelation(luminance(example), max_lag)
    mine = np.mean([autocorrelation(luminance(sample), max_lag) for sample in samples], axis=0)
    return float(np.sqrt(np.mean((mine - theirs) ** 2)))


def mean_pairwise_distance(features: dict[str, torch.Tensor]) -> float:
    flat = torch.cat([value.flatten(1) / value[0].numel() ** 0.5 for value in features.values()], dim=1)
    distances = torch.cdist(flat, flat)
    count = len(flat)
    return float(distances.sum() / (count * (count - 1)))


@torch.no_grad()
def diversity(descriptor: VGG19Descriptor, samples: torch.Tensor, example: Image.Image) -> float | None:
    """Mean pairwise VGG-feature distance between samples / the same between crops of the example
    (1 = as varied as the example). Both sides are crops of one size, three quarters of the
    smaller image: one per sample, the example's four corners."""
    if len(samples) < 2:
        return None
    side = max(32, min(samples.shape[-1], samples.shape[-2], example.width, example.height) * 3 // 4)
    crops = [example.crop((left, top, left + side, top + side))
             for left in (0, example.width - side) for top in (0, example.height - side)]
    reference = torch.cat([image_to_tensor(crop) for crop in crops])
    return mean_pairwise_distance(descriptor(samples[..., :side, :side])) / \
        mean_pairwise_distance(descriptor(reference))


def seam_score(samples: list[np.ndarray], period: int) -> float | None:
    """Jump across the wrap-around edge / jump across interior lines at multiples of `period`
    (the same phase on the generator's coarsest grid), rows and columns; None if the samples are
    too small to have an interior line of that phase."""
    wrap, interior = [], []
    for sample in samples:
        gray = luminance(sample)
        for grid in (gray, gray.T):
            if grid.shape[0] < 2 * period or grid.shape[0] % period:
                return None
            jumps = np.abs(np.diff(np.vstack([grid, grid[:1]]), axis=0)).mean(axis=1)
            wrap.append(jumps[-1])
            interior += list(jumps[period - 1: -1: period])
    return float(np.mean(wrap) / max(np.mean(interior), 1e-12))


BLOB_BLOCK = 5  # a blob is at least this many pixels across
RARE = 0.001  # a blob's pixels are darker or lighter than all but this share of the example's


def luminance_range(example: np.ndarray) -> tuple[float, float]:
    """The example's luminance (0..1) at its RARE and 1 - RARE quantiles."""
    low, high = np.quantile(luminance(example), [RARE, 1 - RARE])
    return float(low), float(high)


def blob_share(image: np.ndarray, dark: float, light: float) -> float:
    """Share of pixels inside blobs: regions of BLOB_BLOCK x BLOB_BLOCK pixels or more whose
    luminance (0..1) is below `dark` or above `light`. Saturated ovals and the smooth dark or pale
    droplets of coarse scales are such blobs; a texture's own dark crevices or bright specks are
    thin or scattered and rarely are."""
    lum = luminance(image)
    mask = torch.from_numpy(((lum < dark) | (lum > light)).astype(np.float32))[None, None]
    pad = BLOB_BLOCK // 2
    cores = -F.max_pool2d(-mask, BLOB_BLOCK, stride=1, padding=pad)  # erosion: the whole block is out of range
    blobs = F.max_pool2d(cores, BLOB_BLOCK, stride=1, padding=pad) * mask  # back out to the blob's pixels
    return float(blobs.mean())


def excess_blob_share(samples: list[np.ndarray], example_pixels: np.ndarray) -> float:
    """Mean share of the samples' pixels in saturated blobs, less the example's own (at least 0)."""
    dark, light = luminance_range(example_pixels)
    return max(0.0, float(np.mean([blob_share(sample, dark, light) for sample in samples]))
               - blob_share(example_pixels, dark, light))


def evaluate_images(descriptor: VGG19Descriptor, samples: list[np.ndarray], original: Image.Image,
                    example_size: int = 256, tile_period: int | None = None) -> QualityReport:
    """The report for texture images (H, W, 3) uint8 against their example `original` (as the
    user gave it; the held-out targets are derived from it). `tile_period`: the generator's
    coarsest-grid period for the phase-aware seam score, None for images that do not tile."""
    targets = held_out_targets(original, example_size)
    trained = resize_to_fit(original, example_size)
    batch = torch.cat([image_to_tensor(Image.fromarray(sample)) for sample in samples])
    example_pixels = np.asarray(trained)
    return QualityReport(
        held_out_gram=held_out_gram_scorer(descriptor, original, example_size)(batch),
        sliced_wasserstein=sliced_wasserstein(descriptor, batch, targets),
        structure=structure_distance(samples, example_pixels),
        diversity=diversity(descriptor, batch, trained),
        seam=seam_score(samples, tile_period) if tile_period else None,
        blobs=excess_blob_share(samples, example_pixels),
    )


def evaluate_model(descriptor: VGG19Descriptor, model, original: Image.Image, count: int = 4, size: int = 256,
                   example_size: int = 256) -> QualityReport:
    """The report for `count` samples of a texture model (seeds 0 onwards), with its droplet score."""
    from .droplets import droplet_peak

    samples = [np.asarray(image) for image in model.sample(count, size)]
    report = evaluate_images(descriptor, samples, original, example_size, model.config.tile_multiple)
    return replace(report, droplets=droplet_peak(model, size=size))


def evaluation_descriptor(weights_path=None) -> VGG19Descriptor:
    return VGG19Descriptor.pretrained(TEXTURE_LAYERS, weights_path=weights_path)


def example_floor(descriptor: VGG19Descriptor, original: Image.Image, example_size: int = 256) -> QualityReport:
    """The example itself, scored like a sample: what a perfect generator would get (the held-out
    targets differ from it by their resampling, so the Gram and SW floors are not zero)."""
    return evaluate_images(descriptor, [np.asarray(resize_to_fit(original, example_size))], original, example_size)


MEASURES = {  # report field: (label, how to read it)
    "held_out_gram": ("held-out Gram loss", "lower is better"),
    "sliced_wasserstein": ("sliced Wasserstein", "lower is better"),
    "structure": ("structure (autocorrelation)", "lower is better"),
    "diversity": ("diversity", "1 = as varied as the example"),
    "seam": ("seam", "1 = the wrap-around edge is invisible"),
    "blobs": ("blobs beyond the example's range", "share of pixels, over the example's own"),
    "droplets": ("droplets (peak |z|)", "models with smooth ovals or spots: 8 and more"),
}


def format_report(report: QualityReport, floor: QualityReport) -> str:
    """A table of the report beside the example's own scores."""
    lines = [f"{'measure':30s} {'result':>10s} {'example':>10s}  how to read it"]
    for field, (label, reading) in MEASURES.items():
        value, reference = getattr(report, field), getattr(floor, field)
        shown = "n/a" if value is None else f"{value:.3g}"
        reference = "" if reference is None or field in ("diversity", "seam") else f"{reference:.3g}"
        if value is None and field == "droplets":
            continue
        lines.append(f"{label:30s} {shown:>10s} {reference:>10s}  {reading}")
    return "\n".join(lines)


# -- stylization: the same held-out style measures, and content on layers of both kinds -----------
STYLE_EVALUATION_LAYERS = (*TEXTURE_LAYERS, "relu3_2", "relu4_2")


@dataclass
class StylizationReport:
    held_out_gram: float  # style: against held-out versions of the painting
    sliced_wasserstein: float
    content: float  # relu4_2 squared error to the photo: what training and Gatys both minimise
    content_held_out: float  # relu3_2 squared error: a layer neither optimises

    def as_dict(self) -> dict:
        return asdict(self)


def style_evaluation_descriptor(weights_path=None) -> VGG19Descriptor:
    return VGG19Descriptor.pretrained(STYLE_EVALUATION_LAYERS, weights_path=weights_path)


class StylizationScorer:
    """Scores stylized versions of one photo (H, W, 3) uint8 against the photo and the painting;
    the painting's held-out targets and the photo's features are computed once, for all results,
    and each result goes through VGG once (the style layers are a subset of the descriptor's)."""

    @torch.no_grad()
    def __init__(self, descriptor: VGG19Descriptor, photo: np.ndarray, painting: Image.Image, style_size: int = 256):
        self.descriptor = descriptor
        self.target_features = [descriptor(image_to_tensor(target))
                                for target in held_out_targets(painting, style_size)]
        self.gram_targets = [TextureTarget.from_features(features, dict.fromkeys(TEXTURE_LAYERS, 1.0))
                             for features in self.target_features]
        self.photo_features = descriptor(image_to_tensor(Image.fromarray(photo)))

    @torch.no_grad()
    def __call__(self, result: np.ndarray) -> StylizationReport:
        features = self.descriptor(image_to_tensor(Image.fromarray(result)))
        return StylizationReport(
            held_out_gram=mean_gram_loss(self.gram_targets, features),
            sliced_wasserstein=sliced_wasserstein_of_features(features, self.target_features, TEXTURE_LAYERS),
            content=float((features["relu4_2"] - self.photo_features["relu4_2"]).pow(2).mean()),
            content_held_out=float((features["relu3_2"] - self.photo_features["relu3_2"]).pow(2).mean()),
        )


def evaluate_stylization(descriptor: VGG19Descriptor, result: np.ndarray, photo: np.ndarray,
                         painting: Image.Image, style_size: int = 256) -> StylizationReport:
    """Scores of one stylized photo (H, W, 3) uint8 against the photo and the painting."""
    return StylizationScorer(descriptor, photo, painting, style_size)(result)
