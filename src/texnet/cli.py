"""The `texnet` command: a thin layer over the Python API.

Every user-facing failure is one line on stderr and a non-zero exit status: TexnetError for bad
input (exit 1), usage mistakes (exit 2), Ctrl-C (exit 130). Modules are imported inside each
command, so `texnet --help` and `texnet sample` with onnxruntime never import PyTorch.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import warnings
from pathlib import Path

from .errors import TexnetError

MIN_EXAMPLE_SIDE = 32  # smaller examples leave relu5_1 with a 2x2 map or less
MAX_SEED = 2 ** 63 - 1
GATYS_BYTES_PER_PIXEL = 6000  # VGG-19 forward + backward and L-BFGS history (measured: 403 MB at 256 px)
TRAINING_BYTES_PER_PIXEL = 12000  # the same for a generator and its VGG loss (about 1 GB at 256 px)


class ArgumentParser(argparse.ArgumentParser):
    """Usage mistakes get the same one-line treatment as other errors."""

    def error(self, message):
        self.exit(2, f"texnet: error: {message} (see `{self.prog} --help`)\n")


class PrintVersion(argparse.Action):
    """--version, looked up only when asked for: importlib.metadata takes 40 ms to import."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, help="show texnet's version and exit")

    def __call__(self, parser, namespace, values, option_string=None):
        from . import package_version

        print(f"texnet {package_version()}")
        parser.exit()


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not hasattr(args, "run"):
        parser.print_help()
        return 2
    debug = bool(os.environ.get("TEXNET_DEBUG"))
    with warnings.catch_warnings():
        if not debug:  # library warnings (PyTorch's, Pillow's) would break the one-line promise
            warnings.simplefilter("ignore")
        try:
            args.run(args)
        except TexnetError as error:
            return fail(f"error: {error}")
        except KeyboardInterrupt as interruption:
            return fail(f"interrupted{'; ' + str(interruption) if str(interruption) else ''}", 130)
        except MemoryError:
            return fail("error: out of memory; try a smaller --size or --memory-limit")
        except BrokenPipeError:  # the reader stopped reading (`texnet models | head -1`): not an error to report
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # keeps the flush at exit quiet too
            return 1
        except OSError as error:  # a disk that filled up or went away while writing
            where = f"{error.filename}: " if error.filename else ""
            return fail(f"error: {where}{error.strerror or error}")
        except Exception as error:
            if debug:
                raise
            if "can't allocate memory" in str(error) or "out of memory" in str(error).lower():
                return fail("error: out of memory; try a smaller --size or --memory-limit")
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            return fail(f"internal error (a bug in texnet, please report it): {type(error).__name__}: {first}; "
                        "run with TEXNET_DEBUG=1 to see where", 70)
    return 0


def fail(message: str, status: int = 1) -> int:
    print(f"texnet: {message}", file=sys.stderr)
    return status


# -- option types: each refuses nonsense at parse time, in one line -------------------------------
def whole_number(low: int, high: int | None = None):
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a whole number") from None
        if value < low or (high is not None and value > high):
            bound = f"from {low} to {high}" if high is not None else f"at least {low}"
            raise argparse.ArgumentTypeError(f"{value} is out of range: expected {bound}")
        return value
    return parse


def number(low: float, high: float | None = None, low_inclusive: bool = True):
    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"'{text}' is not a number") from None
        if not math.isfinite(value) or value < low or (value == low and not low_inclusive) or \
                (high is not None and value > high):
            bound = f"between {low:g} and {high:g}" if high is not None else \
                f"{'at least' if low_inclusive else 'more than'} {low:g}"
            raise argparse.ArgumentTypeError(f"{text} is out of range: expected a number {bound}")
        return value
    return parse


def device_name(text: str) -> str:
    if text == "cpu" or text == "cuda" or (text.startswith("cuda:") and text[5:].isdigit()):
        return text
    raise argparse.ArgumentTypeError(f"'{text}' is not a device texnet runs on: expected cpu, cuda or cuda:N")


positive = whole_number(1)
seed_number = whole_number(0, MAX_SEED)
positive_float = number(0, low_inclusive=False)
fraction = number(0, 1)


def build_parser() -> ArgumentParser:
    parser = ArgumentParser(prog="texnet", description=__doc__.splitlines()[0])
    parser.add_argument("--version", action=PrintVersion)
    commands = parser.add_subparsers(title="commands", metavar="COMMAND")

    weights = commands.add_parser("weights", help="print where the VGG-19 weights are (fetching them if needed)")
    add_vgg_option(weights)
    weights.set_defaults(run=run_weights)

    synth = commands.add_parser("synthesize", help="texture synthesis by optimisation (Gatys et al., slow)")
    synth.add_argument("example", help="example texture image")
    add_output_option(synth, "output image (format from the extension)")
    synth.add_argument("--size", default="256", help="output size, N or WxH (default 256)")
    synth.add_argument("--example-size", type=whole_number(MIN_EXAMPLE_SIDE), default=256,
                       help="shrink the example so its longer side is at most this (default 256)")
    add_optimisation_options(synth, iters=300)
    synth.set_defaults(run=run_synthesize)

    transfer = commands.add_parser("transfer", help="style transfer by optimisation (Gatys et al., slow)")
    transfer.add_argument("content", help="content photo")
    transfer.add_argument("style", help="style image (a painting)")
    add_output_option(transfer, "output image (format from the extension)")
    transfer.add_argument("--size", default="384",
                          help="N: longer side of the output, keeping the photo's aspect; WxH: exact (default 384)")
    transfer.add_argument("--style-size", type=whole_number(MIN_EXAMPLE_SIDE), default=None,
                          help="longer side of the style image (default: the output's longer side)")
    transfer.add_argument("--style-weight", type=positive_float, default=1e-3,
                          help="weight of the Gram loss (default 1e-3; raise for more style)")
    transfer.add_argument("--content-weight", type=number(0), default=1.0)
    transfer.add_argument("--tv-weight", type=number(0), default=0.0, help="total-variation smoothing weight")
    transfer.add_argument("--init", choices=("content", "noise"), default="content")
    add_optimisation_options(transfer, iters=200)
    transfer.set_defaults(run=run_transfer)

    train = commands.add_parser("train", help="train a texture network on one example (minutes on a CPU)")
    train.add_argument("example", help="example texture image")
    train.add_argument("-o", "--output", required=True, help="model folder to create (or resume)")
    train.add_argument("--preset", choices=sorted(PRESET_NAMES), default="paper",
                       help="paper: the paper's recipe (slow on a CPU); cpu: at most 10 minutes on 2 cores")
    train.add_argument("--norm", choices=("batch", "instance", "robust"),
                       help="generator normalisation: batch (the paper), instance (Improved Texture Networks) or "
                            "robust (instance norm whose spread a few extreme positions cannot move: no droplets)")
    train.add_argument("--padding", choices=("circular", "zeros"), help="circular (default) makes samples tile")
    train.add_argument("--scales", type=whole_number(1, 10), help="number of noise scales K (default 6)")
    train.add_argument("--channels", type=whole_number(1, 64),
                       help="channels per scale (default 8; the finest layers are scales x channels wide)")
    train.add_argument("--negative-slope", type=number(0, 0.99),
                       help="the generator's LeakyReLU slope below zero (default 0.01, the reference code's)")
    train.add_argument("--diversity", type=number(0), help="weight of the diversity term (default 0)")
    train.add_argument("--normalize-gradients", action=argparse.BooleanOptionalAction, default=None,
                       help="divide each VGG layer's loss gradient by its L1 norm (texture_nets' recipe)")
    train.add_argument("--vgg-padding", choices=("same", "valid"), help="valid: VGG without padding")
    train.add_argument("--multiscale", type=number(0), metavar="WEIGHT",
                       help="also compare sample and example at half resolution, with this weight")
    train.add_argument("--spectrum", type=number(0), metavar="WEIGHT", help="weight of the power spectrum term")
    train.add_argument("--init-from", metavar="MODEL", help="start from this texture model's weights (warm start)")
    add_run_options(train, unit="sample")
    train.set_defaults(run=run_train)

    sample = commands.add_parser("sample", help="sample textures from a trained or built-in model (milliseconds)")
    sample.add_argument("model", help="model folder, or a built-in model name (see `texnet models`)")
    sample.add_argument("-o", "--output", required=True,
                        help="output image; with --count N > 1, files are numbered (out-0.png, out-1.png, ...)")
    sample.add_argument("--size", default="256", help="N or WxH, any size up to 16384 (default 256)")
    sample.add_argument("--count", type=whole_number(1, 10000), default=1, help="number of different samples (default 1)")
    sample.add_argument("--tile-preview", action="store_true",
                        help="also write OUTPUT-tiled.EXT, the sample repeated 2x2, to check the seams")
    sample.add_argument("--frames", type=whole_number(2, 100_000),
                        help="write an animation of this many frames that loops seamlessly through the noise "
                             "(OUTPUT .mp4 or .gif)")
    sample.add_argument("--fps", type=number(1, 120), default=24.0, help="frames per second (default 24)")
    add_inference_options(sample)
    sample.set_defaults(run=run_sample)

    style = commands.add_parser("train-style", help="train a stylization network for a painting, or several in "
                                                    "one net (minutes on a CPU)")
    style.add_argument("style", nargs="+", metavar="PAINTING",
                       help="the painting(s); several make one multi-style model whose styles are named after the files")
    style.add_argument("--content", required=True, metavar="DIR",
                       help="folder of photos to train on (random crops; a few are held out for previews)")
    style.add_argument("-o", "--output", required=True, help="model folder to create (or resume)")
    style.add_argument("--preset", choices=sorted(PRESET_NAMES), default="paper",
                       help="paper: the paper's recipe (slow on a CPU); cpu: 6 to 9 minutes on 2 cores with "
                            "native bfloat16, about 20 without")
    style.add_argument("--variant", choices=("residual", "improved", "paper"),
                       help="the network: residual (Johnson et al.), improved (the pyramid with instance norm) or "
                            "paper (the pyramid with batch norm and noise)")
    style.add_argument("--workers", type=whole_number(0, 64), help="processes that read photos (default 1)")
    style.add_argument("--init-from", metavar="MODEL", help="start from this style model's weights (fine-tuning)")
    style.add_argument("--temporal-weight", type=number(0), metavar="WEIGHT",
                       help="weight of the frame-difference loss that keeps video from flickering (default 0)")
    style.add_argument("--style-weight", type=positive_float,
                       help="weight of the style loss (default 1e-4; with --loss sw, 7)")
    style.add_argument("--content-weight", type=number(0), help="weight of the relu4_2 (content) loss (default 1)")
    style.add_argument("--style-size", type=whole_number(MIN_EXAMPLE_SIDE),
                       help="longer side of the painting in px: sets the stroke scale")
    style.add_argument("--channels", type=whole_number(1, 64),
                       help="network width: the residual net has 2x this many channels at half resolution and 4x at "
                            "a quarter, where it paints (default 12); the pyramid this many per scale")
    style.add_argument("--blocks", type=whole_number(0, 32), help="the residual net's residual blocks (default 5)")
    style.add_argument("--noise-channels", type=whole_number(0, 64),
                       help="channels of random noise beside the photo (default 0; the paper variant 3): a source of "
                            "texture where the photo is flat")
    add_run_options(style, unit="crop")
    style.set_defaults(run=run_train_style)

    stylize = commands.add_parser("stylize", help="stylize photos with a trained or built-in style (one pass each)")
    stylize.add_argument("model", help="style model folder, or a built-in style name (see `texnet models`)")
    stylize.add_argument("inputs", nargs="+", metavar="INPUT", help="photos and/or folders of photos")
    stylize.add_argument("-o", "--output", required=True,
                         help="output image for a single photo (its extension sets the format), otherwise a folder "
                              "(created if needed)")
    stylize.add_argument("--max-size", type=positive,
                         help="shrink photos so the longer side is at most this (default: full size; photos too "
                              "large for one pass in memory are stylized in strips)")
    stylize.add_argument("--preserve-colors", action="store_true", help="keep the photo's colours (style the luminance)")
    stylize.add_argument("--strength", type=fraction, default=1.0,
                         help="0..1: blend of the result with the photo (default 1, full style)")
    stylize.add_argument("--style", metavar="NAME[:WEIGHT,...]",
                         help="for a multi-style model: a style, or a blend such as starry-night:0.7,great-wave:0.3")
    stylize.add_argument("--stroke-scale", type=number(0.25, 4), default=1.0,
                         help="brush strokes this many times larger (0.25 to 4; default 1)")
    stylize.add_argument("--refine", type=whole_number(0, 1000), default=0, metavar="STEPS",
                         help="first fit the net to each photo for this many steps (10 bring the style much nearer "
                              "the painting; on 2 cores 0.25 s a step in bfloat16, where the CPU computes it "
                              "natively, else 0.45 s; --no-bf16: float32; needs the VGG weights; default 0)")
    stylize.add_argument("--painting", help="with --refine: the painting to fit to (default: the one the model "
                                            "was trained on, which models keep)")
    stylize.add_argument("--overwrite", action="store_true", help="allow results to replace input photos")
    add_inference_options(stylize, seed_default=None,
                          seed_help="noise seed, for style models with noise (the paper variant)")
    stylize.set_defaults(run=run_stylize)

    video = commands.add_parser("stylize-video", help="stylize a video frame by frame, keeping its sound")
    video.add_argument("input", help="the video (any format FFmpeg reads)")
    video.add_argument("-o", "--output", required=True, help="the stylized video (.mp4, .mov, .mkv)")
    video.add_argument("--style", help="a style: a style model (name or folder), or a style or blend of a built-in "
                                       "multi-style model")
    video.add_argument("--model", help="the style model, when --style names styles inside it")
    video.add_argument("--strength", type=fraction, default=1.0, help="0..1 blend with the frame (default 1)")
    video.add_argument("--preserve-colors", action="store_true", help="keep the video's colours")
    video.add_argument("--stroke-scale", type=number(0.25, 4), default=1.0, help="brush strokes this many times larger")
    video.add_argument("--max-size", type=positive, help="shrink frames so the longer side is at most this")
    video.add_argument("--overwrite", action="store_true", help="allow the output to replace the input")
    add_inference_options(video, seed_default=None, seed_help="noise seed, for style models with noise")
    video.set_defaults(run=run_stylize_video)

    export = commands.add_parser("export", help="export a texture or style model to ONNX, for onnxruntime anywhere")
    export.add_argument("model", help="model folder, or a built-in model name")
    add_output_option(export, "the .onnx file to write (self-contained: graph and weights)")
    export.set_defaults(run=run_export)

    evaluate = commands.add_parser("evaluate", help="score a texture model or images against their example, "
                                                    "on statistics no method optimised")
    evaluate.add_argument("subject", nargs="+", metavar="MODEL_OR_IMAGE",
                          help="a texture model (folder or built-in name), or texture images")
    evaluate.add_argument("--example", required=True, help="the example texture the model or images imitate")
    evaluate.add_argument("--count", type=whole_number(2, 64), default=4, help="samples to draw from a model (default 4)")
    evaluate.add_argument("--size", type=whole_number(64, 2048), default=256, help="sample size in px (default 256)")
    evaluate.add_argument("--example-size", type=whole_number(MIN_EXAMPLE_SIDE), default=256,
                          help="the size the example was used at (default 256, as texnet trains)")
    evaluate.add_argument("--json", action="store_true", help="print the scores as JSON")
    add_vgg_option(evaluate)
    evaluate.set_defaults(run=run_evaluate)

    serve = commands.add_parser("serve", help="a local web app: sample, stylize, train and compare in the browser")
    serve.add_argument("--data", metavar="DIR", help="where the app keeps results and the models it trains "
                                                     "(default ~/.local/share/texnet/serve)")
    serve.add_argument("--model", action="append", default=[], metavar="DIR",
                       help="a model folder to offer besides the built-in ones (repeatable)")
    serve.add_argument("--port", type=whole_number(0, 65535), default=8765, help="port on 127.0.0.1 (default 8765)")
    serve.add_argument("--no-browser", action="store_true", help="do not open the page in a browser")
    serve.set_defaults(run=run_serve)

    models = commands.add_parser("models", help="list the built-in models")
    models.set_defaults(run=run_models)
    return parser


PRESET_NAMES = ("paper", "cpu")


def add_output_option(parser: argparse.ArgumentParser, help_text: str) -> None:
    parser.add_argument("-o", "--output", required=True, help=help_text)
    parser.add_argument("--overwrite", action="store_true", help="allow the output to replace one of the inputs")


def add_vgg_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--vgg-weights", metavar="PATH", default=None,
                        help="VGG-19 weights (.h5 from Keras or texnet's .safetensors); default: $TEXNET_VGG19, "
                             "then the cache, then download")


def add_run_options(parser: argparse.ArgumentParser, unit: str) -> None:
    """What both trainers share: the schedule's size, batch, iterations and learning rate (of
    training `unit`s), bf16, checkpoints and resume, device and seed, VGG weights."""
    parser.add_argument("--size", type=whole_number(16, 4096), help=f"training {unit} size in px")
    parser.add_argument("--batch", type=whole_number(1, 256), help=f"{unit}s per iteration")
    parser.add_argument("--iters", type=whole_number(1, 10_000_000),
                        help="iterations (the preset's learning-rate schedule is stretched or shrunk to match)")
    parser.add_argument("--lr", type=positive_float, help="Adam learning rate")
    parser.add_argument("--loss", choices=("gram", "sw"), help="gram (the paper) or sw (sliced Wasserstein)")
    parser.add_argument("--histogram", type=number(0), metavar="WEIGHT",
                        help="weight of the colour histogram term (sliced Wasserstein distance of pixel colours to "
                             "the example's or painting's)")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="run VGG and the generator in bfloat16 (default: where the CPU computes it natively)")
    parser.add_argument("--ema", type=number(0, 0.9999), metavar="DECAY",
                        help="save the moving average of the weights with this decay, e.g. 0.995 (0: the last "
                             "step's weights)")
    parser.add_argument("--checkpoint-every", type=positive, help="iterations between checkpoints (default 100)")
    parser.add_argument("--resume", action="store_true", help="continue from the checkpoint in the output folder")
    add_device_options(parser)
    add_vgg_option(parser)


def add_inference_options(parser: argparse.ArgumentParser, seed_default: int | None = 0,
                          seed_help: str = "random seed (default 0)") -> None:
    parser.add_argument("--backend", choices=("auto", "onnx", "torch"), default="auto",
                        help="auto (default): onnxruntime where the model has an ONNX graph and the output fits in "
                             "memory, else PyTorch")
    parser.add_argument("--bf16", action=argparse.BooleanOptionalAction, default=None,
                        help="with PyTorch, run the network in bfloat16 (default: where the CPU computes it "
                             "natively; pixels differ from float32 by about 0.002 on average)")
    parser.add_argument("--memory-limit", type=number(16), metavar="MB",
                        help="memory one pass may use; larger outputs are made in exact strips "
                             "(default: 80%% of the free memory, at most 4000)")
    add_device_options(parser, seed_default, seed_help)


def add_device_options(parser: argparse.ArgumentParser, seed_default: int | None = 0,
                       seed_help: str = "random seed (default 0)") -> None:
    parser.add_argument("--device", type=device_name, default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    parser.add_argument("--seed", type=seed_number, default=seed_default, help=seed_help)


def add_optimisation_options(parser: argparse.ArgumentParser, iters: int) -> None:
    parser.add_argument("--iters", type=whole_number(1, 1_000_000), default=iters,
                        help=f"optimisation steps (default {iters})")
    parser.add_argument("--optimizer", choices=("lbfgs", "adam"), default="lbfgs")
    parser.add_argument("--lr", type=positive_float, default=None, help="step size (default 1 for L-BFGS, 0.02 for Adam)")
    parser.add_argument("--pooling", choices=("avg", "max"), default="avg", help="VGG pooling (default avg)")
    add_device_options(parser)
    add_vgg_option(parser)


def pick_device(name: str):
    import torch

    from .model_files import check_device

    return torch.device(check_device(name))


def load_checked_image(path: str, max_side: int | None = None, what: str = "image"):
    """The image at `path`, shrunk to `max_side`, refused if too small for the descriptor (naming
    the size it was shrunk to, so a thin strip of an example is not a mystery)."""
    from .image_io import load_image, resize_to_fit

    original = load_image(path)
    image = resize_to_fit(original, max_side) if max_side else original
    if min(image.size) < MIN_EXAMPLE_SIDE:
        shrunk = f" (shrunk to {image.width}x{image.height} to fit {max_side} px)" if image.size != original.size else ""
        raise TexnetError(f"{path}: the {what} is {original.width}x{original.height}{shrunk}, too small; the "
                          f"descriptor needs at least {MIN_EXAMPLE_SIDE} px on each side")
    return image


def run_weights(args) -> None:
    from .weights import resolve_vgg_weights

    print(resolve_vgg_weights(args.vgg_weights))


def optimisation_setup(args, inputs: list[str], layers, pixels: int):
    from .descriptor import VGG19Descriptor
    from .optimize import OptimizeConfig
    from .outputs import check_image_output
    from .runtime import check_memory

    output = check_image_output(args.output, inputs, args.overwrite)
    check_memory(pixels * GATYS_BYTES_PER_PIXEL, "optimising an image of this size", "use a smaller --size")
    device = pick_device(args.device)
    config = OptimizeConfig(iters=args.iters, optimizer=args.optimizer, lr=args.lr, seed=args.seed)
    return device, output, config, VGG19Descriptor.pretrained(
        layers=layers, pooling=args.pooling, weights_path=args.vgg_weights).to(device)


def run_synthesize(args) -> None:
    from .descriptor import TEXTURE_LAYERS
    from .image_io import check_size, image_to_tensor, parse_size, save_image, tensor_to_image
    from .optimize import synthesize

    size = parse_size(args.size)
    check_size(*size, minimum=MIN_EXAMPLE_SIDE)
    example = load_checked_image(args.example, args.example_size, "example")
    device, output, config, descriptor = optimisation_setup(args, [args.example], TEXTURE_LAYERS, size[0] * size[1])
    result = synthesize(descriptor, image_to_tensor(example).to(device), size, config)
    save_image(tensor_to_image(result.image), output)
    print(f"{output}: texture loss {result.loss:.4g} after {args.iters} iterations")


def run_transfer(args) -> None:
    import torch

    from .descriptor import CONTENT_LAYER, TEXTURE_LAYERS
    from .image_io import check_size, image_to_tensor, save_image, tensor_to_image
    from .optimize import TransferWeights, transfer

    photo = load_checked_image(args.content, what="photo")
    height, width = content_size(args.size, photo.height, photo.width)
    check_size(height, width, minimum=MIN_EXAMPLE_SIDE)
    style = load_checked_image(args.style, args.style_size or max(height, width), "style image")
    device, output, config, descriptor = optimisation_setup(
        args, [args.content, args.style], (*TEXTURE_LAYERS, CONTENT_LAYER), height * width)
    content = torch.nn.functional.interpolate(image_to_tensor(photo).to(device), size=(height, width),
                                              mode="bilinear", antialias=True, align_corners=False).clamp(0, 1)
    weights = TransferWeights(style=args.style_weight, content=args.content_weight, tv=args.tv_weight)
    result = transfer(descriptor, content, image_to_tensor(style).to(device), weights, args.init, config)
    save_image(tensor_to_image(result.image), output)
    print(f"{output}: total loss {result.loss:.4g} after {args.iters} iterations")


def run_overrides(args, names: tuple[str, ...]) -> dict:
    return {key: getattr(args, key) for key in names if getattr(args, key) is not None}


def with_iterations(preset, args):
    """The preset for --iters iterations: its decay keeps its place in the run, so a longer run
    does not spend its second half at a learning rate that has decayed to nothing."""
    from .training import scaled_to

    return scaled_to(preset, args.iters) if args.iters else preset


def prepare_training(args, pixels_per_step: int, kind: str):
    """What both trainers do before loading anything heavy: the output folder (created, or a
    checkpoint to resume), the memory a step needs, the device."""
    from .model_files import model_folder, read_model
    from .outputs import check_model_output
    from .runtime import check_memory

    if args.init_from:  # a wrong donor is refused before the output folder is made
        read_model(model_folder(args.init_from), kind)
    output = check_model_output(args.output, args.resume)
    check_memory(pixels_per_step * TRAINING_BYTES_PER_PIXEL, "a training step of this --size and --batch",
                 "use a smaller --size or --batch")
    return output, pick_device(args.device)


def interrupted_training(output: Path) -> KeyboardInterrupt:
    return KeyboardInterrupt(f"the last checkpoint is in {output / 'checkpoint'}; "
                             "run the same command with --resume to continue")


def run_train(args) -> None:
    from dataclasses import replace

    from .descriptor import TEXTURE_LAYERS, VGG19Descriptor
    from .training import PRESETS, train_texture

    config = with_iterations(PRESETS[args.preset], args)
    overrides = run_overrides(args, ("size", "batch", "lr", "diversity", "bf16", "checkpoint_every", "loss",
                                     "normalize_gradients", "vgg_padding", "multiscale", "spectrum", "histogram",
                                     "init_from", "ema"))
    generator = run_overrides(args, ("norm", "padding", "scales", "channels", "negative_slope"))
    config = replace(config, seed=args.seed, **overrides, generator=replace(config.generator, **generator))
    example = load_checked_image(args.example, config.example_size, "example")
    output, device = prepare_training(args, config.size ** 2 * config.batch, "texture")
    descriptor = VGG19Descriptor.pretrained(TEXTURE_LAYERS, weights_path=args.vgg_weights)
    try:
        train_texture(example, output, config, resume=args.resume, device=device, descriptor=descriptor)
    except KeyboardInterrupt:
        raise interrupted_training(output) from None
    report_saved(output, "samples.png")


def report_saved(output: Path, previews: str) -> None:
    from .distributed import is_main_process

    if is_main_process():  # under torchrun, once
        print(f"{output}: model saved; previews in {output / previews}, loss curve in {output / 'loss.png'}")


def style_train_config(args):
    """train-style's StyleTrainConfig: the preset and variant, with the options given."""
    from dataclasses import replace

    from .style_training import style_preset

    overrides = run_overrides(args, ("size", "batch", "lr", "style_weight", "content_weight", "style_size",
                                     "bf16", "checkpoint_every", "workers", "temporal_weight", "init_from", "ema",
                                     "histogram"))
    config = with_iterations(style_preset(args.preset, args.variant, args.loss or "gram"), args)
    generator = replace(config.generator, **run_overrides(args, ("channels", "blocks", "noise_channels")))
    return replace(config, seed=args.seed, generator=generator, **overrides)


def run_train_style(args) -> None:
    from .descriptor import CONTENT_LAYER, TEXTURE_LAYERS, VGG19Descriptor
    from .style_training import train_style

    config = style_train_config(args)
    names = [Path(path).stem for path in args.style]
    if len(set(names)) < len(names):
        raise TexnetError("two paintings share a file name, and styles are named after their files")
    styles = {name: load_checked_image(path, config.style_size, "painting") for name, path in zip(names, args.style)}
    content = Path(args.content)
    if not content.is_dir():
        raise TexnetError(f"{content}: --content takes a folder of photos, and this is "
                          f"{'a file' if content.exists() else 'not there'}")
    output, device = prepare_training(args, config.size ** 2 * config.batch, "style")
    descriptor = VGG19Descriptor.pretrained((*TEXTURE_LAYERS, CONTENT_LAYER), weights_path=args.vgg_weights)
    try:
        train_style(styles, content, output, config, resume=args.resume, device=device, descriptor=descriptor)
    except KeyboardInterrupt:
        raise interrupted_training(output) from None
    report_saved(output, "before-after.png")


def run_stylize(args) -> None:
    from .image_io import load_image, megapixels, save_image
    from .stylizer import Stylizer

    jobs = stylize_jobs(args.inputs, args.output, args.overwrite)
    model = Stylizer.from_pretrained(args.model, device=args.device)
    model.seed_for(args.seed)  # refuses a seed or style the model cannot use, before any photo is read
    model.style_weights(args.style)
    backend = args.backend if len(jobs) == 1 else \
        model.backend_for_many(args.backend, args.bf16, lambda: sum(megapixels(source) for source, _ in jobs))
    refine_for = photo_refiner(model, args)
    failures = []
    bar = None if len(jobs) == 1 else many_photos_bar(jobs)
    for source, target in bar or jobs:
        try:
            photo = load_image(source)
            result = refine_for(photo).stylize(photo, args.strength, args.preserve_colors, args.max_size,
                                               seed=args.seed, bf16=args.bf16, backend=backend,
                                               memory_limit_mb=args.memory_limit, style=args.style,
                                               stroke_scale=args.stroke_scale)
            save_image(result, target)
        except TexnetError as error:
            if bar is None:
                raise
            failures.append(str(error))
            bar.write(f"texnet: skipped {error}", file=sys.stderr)
    if failures:
        raise TexnetError(f"{len(failures)} of {len(jobs)} images failed (the others were stylized): "
                          + "; ".join(failures))
    print(jobs[0][1] if len(jobs) == 1 else f"{len(jobs)} images stylized into {Path(args.output)}")


def photo_refiner(model, args):
    """photo -> the model that stylizes it: `model` itself, or with --refine a copy fitted to the
    photo (the painting and the VGG weights are read once, before any photo)."""
    if args.painting is not None and not args.refine:
        raise TexnetError("--painting is what --refine fits to: give --refine STEPS too")
    if not args.refine:
        return lambda photo: model
    if args.backend == "onnx":
        raise TexnetError("a refined net runs on PyTorch (it is not exported): leave out --backend onnx")
    from .image_io import load_image
    from .refine import refine_descriptor

    painting = model.painting_to_fit(args.style, load_image(args.painting) if args.painting is not None else None)
    descriptor = refine_descriptor()
    return lambda photo: model.refined(photo, args.refine, painting, args.style, args.max_size, args.stroke_scale,
                                       descriptor, args.bf16)


def many_photos_bar(jobs):
    """A progress bar over the photos (imported only then: tqdm takes 30 ms, a tenth of one photo)."""
    from .progress import progress_bar

    return progress_bar(jobs, unit="image")


def stylize_jobs(inputs: list[str], output: str, overwrite: bool) -> list[tuple[Path, Path]]:
    """(photo, result path) pairs: one photo to a file, or many photos (folders expanded) into
    a folder, each result named after its photo. Checked and the folder created before any work."""
    from .image_io import image_files
    from .outputs import check_image_output, check_writable_folder, plan_folder_outputs

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
    to_folder = len(photos) > 1 or target.is_dir() or output.endswith(("/", os.sep))
    if not to_folder:
        return [(photos[0], check_image_output(target, photos, overwrite))]
    results = plan_folder_outputs(photos, target, overwrite)
    if not target.exists():
        if not target.parent.is_dir():
            raise TexnetError(f"{target.parent}: output folder does not exist")
        target.mkdir()
    check_writable_folder(target)
    return list(zip(photos, results))


def run_sample(args) -> None:
    from .image_io import parse_size, save_image
    from .outputs import check_image_output
    from .sampling import TextureGenerator, tile_preview

    model = TextureGenerator.from_pretrained(args.model, device=args.device)
    height, width = parse_size(args.size)
    model_files = list(model.folder.iterdir()) if model.folder else []
    if args.frames:
        return write_animation(args, model, (height, width), model_files)
    output = check_image_output(args.output, model_files)
    paths = [output] if args.count == 1 else \
        [output.with_name(f"{output.stem}-{index}{output.suffix}") for index in range(args.count)]
    for path in paths:
        check_image_output(path, model_files)
    images = model.sample(args.count, (height, width), seed=args.seed, bf16=args.bf16, backend=args.backend,
                          memory_limit_mb=args.memory_limit)
    for path, image in zip(paths, images):
        print(save_image(image, path))
        if args.tile_preview:
            print(save_image(tile_preview(image), path.with_name(f"{path.stem}-tiled{path.suffix}")))


def write_animation(args, model, size: tuple[int, int], model_files: list[Path]) -> None:
    from .outputs import check_not_an_input, check_writable_folder
    from .video import VIDEO_SUFFIXES, write_texture_animation

    output = Path(args.output)
    if output.suffix.lower() not in VIDEO_SUFFIXES | {".gif"}:
        raise TexnetError(f"{output}: --frames writes an animation: .mp4, .mov, .mkv or .gif")
    check_writable_folder(output.parent)
    check_not_an_input(output, model_files, False)
    write_texture_animation(model, output, size, args.frames, args.fps, args.seed)
    print(output)


def run_stylize_video(args) -> None:
    from .outputs import check_not_an_input, check_writable_folder
    from .stylizer import Stylizer
    from .video import check_video_output, stylize_video, video_megapixels

    source, target = Path(args.input), check_video_output(Path(args.output))
    if not source.is_file():
        raise TexnetError(f"{source}: no such file")
    check_writable_folder(target.parent)
    check_not_an_input(target, [source], args.overwrite)
    model, style = Stylizer.for_style(args.style, args.model, args.device)
    model.seed_for(args.seed)
    model.style_weights(style)
    backend = model.backend_for_many(args.backend, args.bf16, lambda: video_megapixels(source))

    def stylize_frame(frame):
        return model.stylize(frame, args.strength, args.preserve_colors, args.max_size, seed=args.seed, bf16=args.bf16,
                             backend=backend, memory_limit_mb=args.memory_limit, style=style,
                             stroke_scale=args.stroke_scale)

    report = stylize_video(source, target, stylize_frame)
    sound = "with its sound" if report.audio else "no sound in the input"
    print(f"{target}: {report.frames} frames at {report.frame_rate:.3g} fps, {sound}; flicker {report.flicker:.2f} "
          "(output change between frames / input change)")


def run_export(args) -> None:
    from .model_files import model_folder, read_config
    from .outputs import check_writable_folder, check_not_an_input

    output = Path(args.output)
    if output.suffix.lower() != ".onnx":
        raise TexnetError(f"{output}: an ONNX export is written to a .onnx file")
    if output.is_dir():
        raise TexnetError(f"{output}: is a folder; give a file name such as model.onnx")
    folder = model_folder(args.model)
    if not folder.is_dir():
        raise TexnetError(f"{folder}: no such model")
    kind = read_config(folder)["kind"]
    check_writable_folder(output.parent)
    check_not_an_input(output, list(folder.iterdir()), args.overwrite)
    from .onnx_export import export_onnx
    from .sampling import TextureGenerator
    from .stylizer import Stylizer

    model = (TextureGenerator if kind == "texture" else Stylizer).from_pretrained(folder)
    export_onnx(model.net, output, kind=kind)
    print(f"{output}: {kind} model, inputs {', '.join(model.config.input_names())}; output image")


def run_evaluate(args) -> None:
    import json

    import numpy as np

    from .model_files import builtin_models
    from .quality import evaluate_images, evaluate_model, evaluation_descriptor, example_floor, format_report
    from .sampling import TextureGenerator

    original = load_checked_image(args.example, what="example")
    first = Path(args.subject[0])
    is_model = len(args.subject) == 1 and (first.is_dir() or args.subject[0] in builtin_models()
                                           or args.subject[0].startswith("builtin:"))
    if is_model:
        model = TextureGenerator.from_pretrained(args.subject[0])
        what = f"{args.count} samples of {args.size} px from {args.subject[0]}"
    else:
        samples = [np.asarray(load_checked_image(path, what="image")) for path in args.subject]
        what = f"{len(samples)} image(s)"
    descriptor = evaluation_descriptor(args.vgg_weights)
    report = (evaluate_model(descriptor, model, original, args.count, args.size, args.example_size) if is_model
              else evaluate_images(descriptor, samples, original, args.example_size))
    if args.json:
        print(json.dumps(report.as_dict()))
        return
    print(f"{what}, against {args.example}:")
    print(format_report(report, example_floor(descriptor, original, args.example_size)))


def run_serve(args) -> None:
    from .model_files import read_config
    from .outputs import check_writable_folder
    from .webapp import default_data_folder, serve

    data = Path(args.data) if args.data else default_data_folder()
    try:
        data.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise TexnetError(f"{data}: cannot create the data folder ({error.strerror or error})") from None
    check_writable_folder(data)
    for folder in args.model:
        read_config(Path(folder))  # a wrong folder is refused now, not on the page
    print(f"texnet: serving on http://127.0.0.1:{args.port}/ (data in {data}); Ctrl-C stops it", file=sys.stderr)
    serve(data, [Path(folder) for folder in args.model], args.port, open_browser=not args.no_browser)


def run_models(args) -> None:
    from .model_files import builtin_models, read_config

    for kind, command in (("texture", "texnet sample NAME -o out.png"),
                          ("style", "texnet stylize NAME photo.jpg -o out.jpg")):
        print(f"{kind} models ({command}):")
        for name, folder in builtin_models(kind).items():
            styles = read_config(folder).get("training", {}).get("styles", [])
            held = f"  styles: {', '.join(styles)} (--style NAME or a blend)" if len(styles) > 1 else ""
            print(f"  {name:18s} {folder}{held}")


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
