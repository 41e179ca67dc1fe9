"""Where results go, checked before any work starts.

A texnet command never overwrites one of its own inputs (unless told to with `--overwrite`),
never writes into a folder of the user's that is not a texnet model, and finds out that an
output cannot be written before it spends minutes or hours on the work, not after.
"""

from __future__ import annotations

import io
import json
import os
import re
import tempfile
from collections.abc import Iterable
from pathlib import Path

from .errors import TexnetError

IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".gif", ".tif", ".tiff", ".webp"}
# What a texnet model folder may hold; anything else means the folder belongs to someone else.
MODEL_FOLDER_ENTRIES = {"config.json", "model.safetensors", "model.onnx", "checkpoint", "loss.png", "samples.png",
                        "before-after.png"}
# The paintings a style model was trained on, as its loss saw them, beside its weights (for `Stylizer.refined`).
PAINTING_FILE = "painting-{}.png"
PAINTING_NAME = re.compile(re.escape(PAINTING_FILE).replace(re.escape("{}"), r"\d+"))


def image_format(path: str | os.PathLike) -> str:
    """The Pillow format an output path's extension names, refused unless Pillow can write an
    RGB image in it (some formats, such as XBM, take only other modes and would fail at the end)."""
    from PIL import Image

    suffix = Path(path).suffix.lower()
    if not suffix:
        raise TexnetError(f"{path}: give the output file an extension such as .png or .jpg")
    format_name = Image.registered_extensions().get(suffix)
    if format_name is None or format_name not in Image.SAVE:
        raise TexnetError(f"{path}: cannot write '{suffix}' images; use .png, .jpg, .webp, ...")
    try:
        Image.new("RGB", (2, 2)).save(io.BytesIO(), format=format_name)
    except (OSError, ValueError, KeyError) as error:
        raise TexnetError(f"{path}: cannot write RGB images as '{suffix}' ({error}); use .png, .jpg, .webp, ...") \
            from None
    return format_name


def same_file(first: Path, second: Path) -> bool:
    """Whether two paths name one file (also through links and relative paths)."""
    try:
        return first.exists() and second.exists() and os.path.samefile(first, second)
    except OSError:
        return False


def check_not_an_input(output: Path, inputs: Iterable[str | os.PathLike], overwrite: bool) -> None:
    if overwrite:
        return
    for source in inputs:
        if same_file(output, Path(source)):
            raise TexnetError(f"{output}: is one of the inputs and would be overwritten; "
                              "choose another output, or pass --overwrite to replace it")


def check_writable_folder(folder: Path) -> None:
    """`folder` exists, is a folder, and a file can really be created in it (os.access is not
    enough: read-only mounts and some sandboxes answer yes and then refuse)."""
    if not folder.exists():
        raise TexnetError(f"{folder}: output folder does not exist")
    if not folder.is_dir():
        raise TexnetError(f"{folder}: is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=folder, prefix=".texnet-probe-"):
            pass
    except OSError as error:
        raise TexnetError(f"{folder}: output folder is not writable ({error.strerror or error})") from None


def check_image_output(path: str | os.PathLike, inputs: Iterable[str | os.PathLike] = (),
                       overwrite: bool = False) -> Path:
    """An output image path that can be written, in a format that can be saved, that is none of
    `inputs` (unless `overwrite`) and not a folder."""
    output = Path(path)
    image_format(output)
    if output.is_dir():
        raise TexnetError(f"{output}: is a folder; give an image file name such as out.png")
    check_writable_folder(output.parent)
    check_not_an_input(output, inputs, overwrite)
    return output


def check_model_output(folder: str | os.PathLike, resume: bool) -> Path:
    """A folder to train a model into: new, empty, or (with `resume`) one holding a texnet
    checkpoint. A folder with anything else in it is the user's and is left alone. The folder
    is created now, so that an unwritable place fails before training, not after."""
    folder = Path(folder)
    if folder.exists() and not folder.is_dir():
        raise TexnetError(f"{folder}: exists and is not a folder")
    if folder.is_dir():
        entries = {entry.name for entry in folder.iterdir()}
        paintings = {name for name in entries if PAINTING_NAME.fullmatch(name)}
        foreign = sorted(entries - MODEL_FOLDER_ENTRIES - paintings)
        if "config.json" in entries and not is_texnet_config(folder / "config.json"):
            foreign.insert(0, "a config.json that is not texnet's")
        if foreign:
            raise TexnetError(f"{folder}: is not empty and not a texnet model folder (it holds {foreign[0]}"
                              f"{' and more' if len(foreign) > 1 else ''}); choose a new or empty folder")
        if entries and not resume:
            what = "a checkpoint" if "checkpoint" in entries else "a model"
            raise TexnetError(f"{folder}: holds {what} already; pass --resume to continue its training, "
                              "or choose another output folder")
    else:
        if not folder.parent.exists():
            raise TexnetError(f"{folder.parent}: output folder does not exist")
        check_writable_folder(folder.parent)
        try:
            folder.mkdir()
        except OSError as error:
            raise TexnetError(f"{folder}: cannot create the model folder ({error.strerror or error})") from None
    check_writable_folder(folder)
    return folder


def is_texnet_config(path: Path) -> bool:
    """Whether `path` is a texnet model's config.json (anything else by that name is the user's)."""
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(document, dict) and "format_version" in document and "kind" in document


def plan_folder_outputs(photos: list[Path], folder: Path, overwrite: bool, suffix: str | None = None) -> list[Path]:
    """Result paths for many photos in one output folder, each named after its photo (with
    `suffix` if given): refused if two would collide or one would overwrite an input."""
    if folder.exists() and not folder.is_dir():
        raise TexnetError(f"{folder}: several photos need an output folder, and this is a file")
    if not folder.exists() and folder.suffix.lower() in IMAGE_SUFFIXES:
        raise TexnetError(f"{folder}: several photos need an output folder, not an image file name")
    targets = [folder / (photo.name if suffix is None else photo.with_suffix(suffix).name) for photo in photos]
    names = [target.name for target in targets]
    if len(set(names)) < len(names):
        raise TexnetError("two photos share a file name, so their results would overwrite each other")
    for target in targets:
        check_not_an_input(target, photos, overwrite)
    return targets
