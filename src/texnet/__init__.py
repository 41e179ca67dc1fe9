"""texnet: feed-forward texture synthesis and stylization (Texture Networks) with the Gatys baseline."""

from .descriptor import CONTENT_LAYER, TEXTURE_LAYERS, VGG19Descriptor
from .errors import TexnetError
from .generators import GeneratorConfig, PyramidGenerator
from .image_io import image_to_tensor, load_image, save_image, tensor_to_image
from .losses import TextureTarget, content_loss, gram_matrix, total_variation
from .optimize import OptimizeConfig, TransferWeights, synthesize, transfer
from .model_files import builtin_models
from .sampling import TextureGenerator, tile_preview
from .style_training import STYLE_PRESETS, StyleTrainConfig, train_style
from .stylizer import Stylizer
from .training import PRESETS, TrainConfig, train_texture
from .weights import resolve_vgg_weights

__all__ = [
    "CONTENT_LAYER", "TEXTURE_LAYERS", "VGG19Descriptor", "TexnetError", "GeneratorConfig",
    "PyramidGenerator", "image_to_tensor", "load_image", "save_image", "tensor_to_image",
    "TextureTarget", "content_loss", "gram_matrix", "total_variation", "OptimizeConfig",
    "TransferWeights", "synthesize", "transfer", "TextureGenerator", "builtin_models",
    "tile_preview", "PRESETS", "TrainConfig", "train_texture", "resolve_vgg_weights", "STYLE_PRESETS",
    "StyleTrainConfig", "train_style", "Stylizer",
]
