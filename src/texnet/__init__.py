"""texnet: feed-forward texture synthesis and stylization (Texture Networks) with the Gatys baseline.

Names are imported on first use, so that `from texnet import TextureGenerator` (sampling with
onnxruntime) does not import PyTorch, which alone takes longer than a whole sample.
"""

from importlib import import_module

_HOMES = {
    "descriptor": ("CONTENT_LAYER", "TEXTURE_LAYERS", "VGG19Descriptor"),
    "errors": ("TexnetError",),
    "generator_config": ("GeneratorConfig",),
    "generators": ("PyramidGenerator",),
    "image_io": ("image_to_tensor", "load_image", "save_image", "tensor_to_image"),
    "losses": ("TextureTarget", "content_loss", "gram_matrix", "total_variation"),
    "optimize": ("OptimizeConfig", "TransferWeights", "synthesize", "transfer"),
    "model_files": ("builtin_models",),
    "sampling": ("TextureGenerator", "tile_preview"),
    "style_training": ("STYLE_PRESETS", "StyleTrainConfig", "style_preset", "train_style"),
    "stylizer": ("Stylizer",),
    "training": ("PRESETS", "TrainConfig", "train_texture"),
    "weights": ("resolve_vgg_weights",),
}
_MODULE_OF = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_MODULE_OF)


def package_version() -> str:
    """The installed version (importlib.metadata takes 40 ms to import: only asked for when needed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("texnet")
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "0+unknown"


def __getattr__(name: str):
    if name == "__version__":
        return package_version()
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'texnet' has no attribute {name!r}")
    value = getattr(import_module(f".{_MODULE_OF[name]}", __name__), name)
    globals()[name] = value
    return value


def __dir__():
    return sorted([*globals(), *__all__])
