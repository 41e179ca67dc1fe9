"""The `texnet` command: a thin layer over the Python API.

Every user-facing failure is a TexnetError, printed as one line on stderr with exit status 1.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import torch

from .errors import TexnetError

MIN_EXAMPLE_SIDE = 32  # smaller examples leave relu5_1 with a 2x2 map or less


class ArgumentParser(argparse.ArgumentParser):
    """Usage mistakes get the same one-line treatment as other errors."""

    def error(self, message):
        self.exit(2, f"texnet: error: {message} (see `{self.prog} --help`)\n")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    try:
        args.run(args)
    except TexnetError as error:
        print(f"texnet: error: {error}", file=sys.stderr)
        return 1
    except KeyboardInterrupt as interruption:
        detail = f"; {interruption}" if str(interruption) else ""
        print(f"texnet: interrupted{detail}", file=sys.stderr)
        return 130
    except MemoryError:
        print("texnet: error: out of memory; try a smaller --size", file=sys.stderr)
        return 1
    return 0


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="texnet", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    weights = commands.add_parser("weights", help="print where the VGG-19 weights are (fetching them if needed)")
    add_vgg_option(weights)
    weights.set_defaults(run=run_weights)

    synth = commands.add_parser("synthesize", help="texture synthesis by optimisation (Gatys et al., slow)")
    synth.add_argument("example", help="example texture image")
    synth.add_argument("-o", "--output", required=True, help="output image (format from the extension)")
    synth.add_argument("--size", default="256", help="output size, N or WxH (default 256)")
    synth.add_argument("--example-size", type=int, default=256,
                       help="shrink the example so its longer side is at most this (default 256)")
    add_optimisation_options(synth, iters=300)
    synth.set_defaults(run=run_synthesize)

    transfer = commands.add_parser("transfer", help="style transfer by optimisation (Gatys et al., slow)")
    transfer.add_argument("content", help="content photo")
    transfer.add_argument("style", help="style image (a painting)")
    transfer.add_argument("-o", "--output", required=True, help="output image (format from the extension)")
    transfer.add_argument("--size", default="384",
                          help="N: longer side of the output, keeping the photo's aspect; WxH: exact (default 384)")
    transfer.add_argument("--style-size", type=int, default=None,
                          help="longer side of the style image (default: the output's longer side)")
    transfer.add_argument("--style-weight", type=float, default=1e-3,
                          help="weight of the Gram loss (default 1e-3; raise for more style)")
    transfer.add_argument("--content-weight", type=float, default=1.0)
    transfer.add_argument("--tv-weight", type=float, default=0.0, help="total-variation smoothing weight")
    transfer.add_argument("--init", choices=("content", "noise"), default="content")
    add_optimisation_options(transfer, iters=200)
    transfer.set_defaults(run=run_transfer)

    train = commands.add_parser("train", help="train a texture network on one example (minutes on a CPU)")
    train.add_argument("example", help="example texture image")
    train.add_argument("-o", "--output", required=True, help="model folder to create (or resume)")
    train.add_argument("--preset", choices=sorted(PRESET_NAMES), default="paper",
                       help="paper: the paper's recipe (slow on a CPU); cpu: about 9 minutes on 2 cores")
    train.add_argument("--norm", choices=("batch", "instance"), help="generator normalisation")
    train.add_argument("--padding", choices=("circular", "zeros"), help="circular (default) makes samples tile")
    train.add_argument("--scales", type=int, help="number of noise scales K (default 6)")
    train.add_argument("--diversity", type=float, help="weight of the diversity term (default 0)")
    add_run_options(train, unit="sample")
    train.set_defaults(run=run_train)

    sample = commands.add_parser("sample", help="sample textures from a trained or built-in model (milliseconds)")
    sample.add_argument("model", help="model folder, or a built-in model name (see `texnet models`)")
    sample.add_argument("-o", "--output", required=True,
                        help="output image; with --count N > 1, files are numbered (out-0.png, out-1.png, ...)")
    sample.add_argument("--size", default="256", help="N or WxH, any size (default 256)")
    sample.add_argument("--count", type=int, default=1, help="number of different samples (default 1)")
    sample.add_argument("--tile-preview", action="store_true",
                        help="also write OUTPUT-tiled.EXT, the sample repeated 2x2, to check the seams")
    add_bf16_option(sample)
    add_device_options(sample)
    sample.set_defaults(run=run_sample)

    style = commands.add_parser("train-style", help="train a stylization network for one painting (minutes on a CPU)")
    style.add_argument("style", help="the painting (style image)")
    style.add_argument("--content", required=True, metavar="DIR",
                       help="folder of photos to train on (random crops; a few are held out for previews)")
    style.add_argument("-o", "--output", required=True, help="model folder to create (or resume)")
    style.add_argument("--preset", choices=sorted(PRESET_NAMES), default="paper",
                       help="paper: the paper's recipe (slow on a CPU); cpu: about 13 minutes on 2 cores")
    style.add_argument("--variant", choices=("improved", "paper"),
                       help="improved (default): instance norm, no noise; paper: batch norm plus noise")
    style.add_argument("--style-weight", type=float, help="weight of the Gram (style) loss (default 1e-4)")
    style.add_argument("--content-weight", type=float, help="weight of the relu4_2 (content) loss (default 1)")
    style.add_argument("--style-size", type=int, help="longer side of the painting in px: sets the stroke scale")
    add_run_options(style, unit="crop")
    style.set_defaults(run=run_train_style)

    stylize = commands.add_parser("stylize", help="stylize photos with a trained or built-in style (one pass each)")
    stylize.add_argument("model", help="style model folder, or a built-in style name (see `texnet models`)")
    stylize.add_argument("inputs", nargs="+", metavar="INPUT", help="photos and/or folders of photos")
    stylize.add_argument("-o", "--output", required=True,
                         help="output image for a single photo, otherwise a folder (created if needed)")
    stylize.add_argument("--max-size", type=int,
                         help="shrink photos so the longer side is at most this (default: only photos too large "
                              "for the free memory are shrunk, with a note)")
    stylize.add_argument("--preserve-colors", action="store_true", help="keep the photo's colours (style the luminance)")
    stylize.add_argument("--strength", type=float, default=1.0,
                         help="0..1: blend of the result with the photo (default 1, full style)")
    add_bf16_option(stylize)
    add_device_options(stylize)
    stylize.set_defaults(run=run_stylize)

    models = commands.add_parser("models", help="list the built-in models")
    models.set_defaults(run=run_models)
    return parser


PRESET_NAMES = ("paper", "cpu")


def add_vgg_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vgg-weights", metavar="PATH", default=None,
                        help="VGG-19 weights (.h5 from Keras or texnet's .safetensors); default: $TEXNET_VGG19, then the cache, then download")


def add_run_options(parser: argparse.ArgumentParser, unit: str) -> None:
    """What both trainers share: the schedule's size, batch, iterations and learning rate (of
    training `unit`s), bf16, checkpoints and resume, device and seed, VGG weights."""
    parser.add_argument("--size", type=int, help=f"training {unit} size in px")
    parser.add_argument("--batch", type=int, help=f"{unit}s per iteration")
    parser.add_argument("--iters", type=int, help="iterations")
    parser.add_argument("--lr", type=float, help="Adam learning rate")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="run VGG and the generator in bfloat16 (default: on in the cpu preset)")
    parser.add_argument("--checkpoint-every", type=int, help="iterations between checkpoints (default 100)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output folder")
    add_device_options(parser)
    add_vgg_option(parser)


def add_bf16_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="run the network in bfloat16 (default: on where it is faster, e.g. CPUs with "
                             "AVX-512 BF16; pixels differ from float32 by about 0.002 on average)")


def add_device_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--seed", type=int, default=0, help="random seed (default 0)")


def add_optimisation_options(parser: argparse.ArgumentParser, iters: int) -> None:
    parser.add_argument("--iters", type=int, default=iters, help=f"optimisation steps (default {iters})")
    parser.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs")
    parser.add_argument("--lr", type=float, default=None, help="step size (default 1 for L-BFGS, 0.02 for Adam)")
    parser.add_argument("--pooling", choices=("avg", "max"), default="avg", help="VGG pooling (default avg)")
    add_device_options(parser)
    add_vgg_option(parser)


def pick_device(name: str) -> torch.device:
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise TexnetError("--device cuda: no CUDA GPU is available to PyTorch here; use --device cpu")
    try:
        return torch.device(name)
    except RuntimeError:
        raise TexnetError(f"--device '{name}': expected cpu or cuda") from None


def check_writable_output(path: str) -> Path:
    """Fail before hours of work, not after, when the output cannot be written."""
    from .image_io import output_format

    output = Path(path)
    output_format(output)
    if not output.parent.is_dir():
        raise TexnetError(f"{output.parent}: output folder does not exist")
    if not os.access(output.parent, os.W_OK):
        raise TexnetError(f"{output.parent}: output folder is not writable")
    return output


def load_checked_image(path: str, max_side: int = 1 << 30):
    """The image at `path`, shrunk to max_side, refused if too small for the descriptor."""
    from .image_io import load_image, resize_to_fit

    image = resize_to_fit(load_image(path), max_side)
    if min(image.size) < MIN_EXAMPLE_SIDE:
        raise TexnetError(f"{path}: {image.width}x{image.height} is too small; "
                          f"the descriptor needs at least {MIN_EXAMPLE_SIDE} px on each side")
    return image


def load_example(path: str, max_side: int, device: torch.device) -> torch.Tensor:
    from .image_io import image_to_tensor

    return image_to_tensor(load_checked_image(path, max_side)).to(device)


def run_weights(args) -> None:
    from .weights import resolve_vgg_weights

    print(resolve_vgg_weights(args.vgg_weights))


def optimisation_setup(args, layers):
    from .descriptor import VGG19Descriptor
    from .optimize import OptimizeConfig

    device = pick_device(args.device)
    output = check_writable_output(args.output)
    config = OptimizeConfig(iters=args.iters, optimizer=args.optimizer, lr=args.lr, seed=args.seed)
    return device, output, config, VGG19Descriptor.pretrained(
        layers=layers, pooling=args.pooling, weights_path=args.vgg_weights).to(device)


def run_synthesize(args) -> None:
    from .descriptor import TEXTURE_LAYERS
    from .image_io import check_size, parse_size, save_image, tensor_to_image
    from .optimize import synthesize

    size = parse_size(args.size)
    check_size(*size, minimum=MIN_EXAMPLE_SIDE)
    device, output, config, descriptor = optimisation_setup(args, TEXTURE_LAYERS)
    example = load_example(args.example, args.example_size, device)
    result = synthesize(descriptor, example, size, config)
    save_image(tensor_to_image(result.image), output)
    print(f"{output}: texture loss {result.loss:.4g} after {args.iters} iterations")


def run_transfer(args) -> None:
    from .descriptor import CONTENT_LAYER, TEXTURE_LAYERS
    from .image_io import check_size, save_image, tensor_to_image
    from .optimize import TransferWeights, transfer

    device, output, config, descriptor = optimisation_setup(args, (*TEXTURE_LAYERS, CONTENT_LAYER))
    content = load_example(args.content, 1 << 30, device)  # resized below to --size
    height, width = content_size(args.size, *content.shape[-2:])
    check_size(height, width, minimum=MIN_EXAMPLE_SIDE)
    content = torch.nn.functional.interpolate(content, size=(height, width), mode="bilinear",
                                              antialias=True, align_corners=False).clamp(0, 1)
    style = load_example(args.style, args.style_size or max(height, width), device)
    weights = TransferWeights(style=args.style_weight, content=args.content_weight, tv=args.tv_weight)
    result = transfer(descriptor, content, style, weights, args.init, config)
    save_image(tensor_to_image(result.image), output)
    print(f"{output}: total loss {result.loss:.4g} after {args.iters} iterations")


def run_train(args) -> None:
    from dataclasses import replace

    from .descriptor import TEXTURE_LAYERS, VGG19Descriptor
    from .training import PRESETS, train_texture

    device = pick_device(args.device)
    config = PRESETS[args.preset]
    overrides = {key: getattr(args, key) for key in ("size", "batch", "iters", "lr", "diversity", "bf16",
                                                     "checkpoint_every") if getattr(args, key) is not None}
    generator = {key: getattr(args, key) for key in ("norm", "padding", "scales") if getattr(args, key) is not None}
    config = replace(config, seed=args.seed, **overrides, generator=replace(config.generator, **generator))
    example = load_checked_image(args.example)
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise TexnetError(f"{output}: exists and is not a folder")
    descriptor = VGG19Descriptor.pretrained(TEXTURE_LAYERS, weights_path=args.vgg_weights)
    try:
        train_texture(example, output, config, resume=args.resume, device=device, descriptor=descriptor)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"the last checkpoint is in {output / 'checkpoint'}; "
                                "run the same command with --resume to continue") from None
    print(f"{output}: model saved; samples in {output / 'samples.png'}, loss curve in {output / 'loss.png'}")


def run_train_style(args) -> None:
    from dataclasses import replace

    from .descriptor import CONTENT_LAYER, TEXTURE_LAYERS, VGG19Descriptor
    from .style_training import STYLE_PRESETS, train_style
    from .stylizer import VARIANTS

    device = pick_device(args.device)
    overrides = {key: getattr(args, key) for key in ("size", "batch", "iters", "lr", "style_weight", "content_weight",
                                                     "style_size", "bf16", "checkpoint_every")
                 if getattr(args, key) is not None}
    if args.variant:
        overrides["generator"] = VARIANTS[args.variant]
    config = replace(STYLE_PRESETS[args.preset], seed=args.seed, **overrides)
    style = load_checked_image(args.style)
    output = Path(args.output)
    if output.exists() and not output.is_dir():
        raise TexnetError(f"{output}: exists and is not a folder")
    descriptor = VGG19Descriptor.pretrained((*TEXTURE_LAYERS, CONTENT_LAYER), weights_path=args.vgg_weights)
    try:
        train_style(style, args.content, output, config, resume=args.resume, device=device, descriptor=descriptor)
    except KeyboardInterrupt:
        raise KeyboardInterrupt(f"the last checkpoint is in {output / 'checkpoint'}; "
                                "run the same command with --resume to continue") from None
    print(f"{output}: model saved; previews in {output / 'before-after.png'}, loss curve in {output / 'loss.png'}")


def run_stylize(args) -> None:
    from tqdm.auto import tqdm

    from .image_io import load_image, save_image
    from .stylizer import Stylizer

    if not 0 <= args.strength <= 1:
        raise TexnetError(f"--strength must be between 0 and 1, not {args.strength}")
    jobs = stylize_jobs(args.inputs, args.output)
    model = Stylizer.from_pretrained(args.model, device=pick_device(args.device))
    bf16 = model.use_bf16(args.bf16)
    failures = []
    for source, target in tqdm(jobs, unit="image", disable=len(jobs) == 1, dynamic_ncols=True):
        try:
            photo = load_image(source)
            max_size = args.max_size or fit_in_memory(photo, source, bf16)
            result = model.stylize(photo, args.strength, args.preserve_colors, max_size, seed=args.seed, bf16=bf16)
            save_image(result, target)
        except TexnetError as error:
            if len(jobs) == 1:
                raise
            failures.append(str(error))
            tqdm.write(f"texnet: skipped {error}", file=sys.stderr)
    if failures:
        raise TexnetError(f"{len(failures)} of {len(jobs)} images failed (the others were stylized): "
                          + "; ".join(failures))
    if len(jobs) == 1:
        print(jobs[0][1])
    else:
        print(f"{len(jobs)} images stylized into {Path(args.output)}")


def fit_in_memory(photo, source: Path, bf16: bool) -> int:
    """The longer side to stylize `photo` at: its own, unless that would not fit in free memory."""
    from tqdm.auto import tqdm

    from .stylizer import largest_side_in_memory

    fitting = largest_side_in_memory(photo.size, bf16)
    if fitting < max(photo.size):
        tqdm.write(f"texnet: note: {source} is {photo.width}x{photo.height}, too large for the free memory; "
                   f"stylizing it at a longer side of {fitting} px", file=sys.stderr)
    return min(fitting, max(photo.size))


def stylize_jobs(inputs: list[str], output: str) -> list[tuple[Path, Path]]:
    """(photo, result path) pairs: one photo to a file, or many photos (folders expanded) into
    a folder, each result named after its photo."""
    from .image_io import IMAGE_SUFFIXES, image_files

    photos = []
    for name in inputs:
        path = Path(name)
        if path.is_dir():
            photos += image_files(path)
        elif path.exists():
            photos.append(path)
        else:
            raise TexnetError(f"{path}: no such file or folder")
    if not photos:
        raise TexnetError(f"no images found in {', '.join(inputs)}")
    target = Path(output)
    if len(photos) == 1 and not target.is_dir() and target.suffix.lower() in IMAGE_SUFFIXES:
        return [(photos[0], check_writable_output(output))]
    if target.exists() and not target.is_dir():
        raise TexnetError(f"{target}: several photos need an output folder, and this is a file")
    target.mkdir(parents=True, exist_ok=True)
    check_writable_output(str(target / "probe.png"))
    names = [photo.name for photo in photos]
    if len(set(names)) < len(names):
        raise TexnetError("two photos share a file name, so their results would overwrite each other")
    return [(photo, target / photo.name) for photo in photos]


def run_sample(args) -> None:
    from .image_io import parse_size, save_image
    from .sampling import TextureGenerator, tile_preview

    output = check_writable_output(args.output)
    height, width = parse_size(args.size)
    model = TextureGenerator.from_pretrained(args.model, device=pick_device(args.device))
    images = model.sample(args.count, (height, width), seed=args.seed, bf16=args.bf16)
    for index, image in enumerate(images):
        path = output if args.count == 1 else output.with_name(f"{output.stem}-{index}{output.suffix}")
        save_image(image, path)
        print(path)
        if args.tile_preview:
            print(save_image(tile_preview(image), path.with_name(f"{path.stem}-tiled{path.suffix}")))


def run_models(args) -> None:
    from .model_files import builtin_models

    for kind, command in (("texture", "texnet sample NAME -o out.png"), ("style", "texnet stylize NAME photo.jpg -o out.jpg")):
        print(f"{kind} models ({command}):")
        for name, folder in builtin_models(kind).items():
            print(f"  {name:16s} {folder}")


def content_size(size: str, height: int, width: int) -> tuple[int, int]:
    """'N' scales the longer side to N keeping the aspect ratio; 'WxH' is exact."""
    from .image_io import parse_size

    if "x" in size.lower():
        return parse_size(size)
    longer = parse_size(size)[0]
    scale = longer / max(height, width)
    return max(1, round(height * scale)), max(1, round(width * scale))


if __name__ == "__main__":
    sys.exit(main())
