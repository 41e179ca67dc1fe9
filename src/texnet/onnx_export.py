"""Exporting a generator to ONNX, for onnxruntime here and for any other program.

Inputs, in order (GeneratorConfig.input_names): `content`, the photo (stylization nets only,
(B, 3, H, W) in [0, 1]), then `noise_0` ... `noise_{K-1}`, each scale's uniform noise
(B, C, ceil(H / 2^k), ceil(W / 2^k)), finest first (texture nets and the paper's stylization
variant), then `style`, (B, S) weights of the styles of a multi-style net (one style at weight 1,
or a blend). Output `image`: (B, 3, H, W) in [0, 1]. Height and width are free. Drawing the noise
outside the graph keeps one seed one texture whatever runs the net (texnet.noise draws it).

PyTorch's TorchScript-based exporter writes circular padding as slices and concatenations,
which onnxruntime runs exactly (tests/test_onnx.py compares odd sizes and the wrap-around).
"""

from __future__ import annotations

import json
import os
import tempfile
import warnings
from pathlib import Path

import torch

from .atomic_write import write_atomically
from .errors import TexnetError
from .generators import StyledGenerator, fold_upsampling
from .runtime import WEIGHTS_SHA256_KEY, weights_digest

OPSET = 17


class ExportWrapper(torch.nn.Module):
    """The generator with its inputs as separate positional tensors, as ONNX wants them."""

    def __init__(self, net: StyledGenerator):
        super().__init__()
        self.net = net

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        inputs = list(inputs)
        content = inputs.pop(0) if self.net.config.content_channels else None
        style = inputs.pop() if self.net.config.styles > 1 else None
        return self.net(inputs or None, content, style)


def example_inputs(net: StyledGenerator, height: int = 67, width: int = 93) -> list[torch.Tensor]:
    """Inputs of an odd size (so the exporter sees the cropping that odd sizes need)."""
    config = net.config
    sizes = config.scale_sizes(height, width)
    content = [torch.rand(1, 3, height, width)] if config.content_channels else []
    noise = [torch.rand(1, config.noise_channels, h, w) for h, w in sizes] if config.noise_channels else []
    style = [torch.full((1, config.styles), 1 / config.styles)] if config.styles > 1 else []
    return content + noise + style


def export_onnx(net: StyledGenerator, path: str | Path, weights_file: Path | None = None, kind: str = "") -> Path:
    """Write `net` as an ONNX graph at `path` (atomically). With `weights_file` (the model's
    model.safetensors) the graph reads its weights from that file instead of holding a copy."""
    import onnx

    path = Path(path)
    net = net.float().eval()
    names = net.config.input_names()
    axes = {name: {0: "batch", 2: f"height_{name}", 3: f"width_{name}"} if name != "style" else {0: "batch"}
            for name in names}
    axes["image"] = {0: "batch", 2: "height", 3: "width"}
    buffer = tempfile.NamedTemporaryFile(suffix=".onnx", delete=False)
    buffer.close()
    try:
        with torch.no_grad(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the exporter warns about instance norm in eval mode, as intended
            torch.onnx.export(ExportWrapper(fold_upsampling(net)), tuple(example_inputs(net)), buffer.name,
                              input_names=names, output_names=["image"], dynamic_axes=axes, opset_version=OPSET,
                              dynamo=False)
        model = onnx.load(buffer.name)
    finally:
        os.unlink(buffer.name)
    for node in model.graph.node:
        node.doc_string = ""  # source locations of this machine: no use elsewhere
    metadata = {"texnet.kind": kind, "texnet.generator": json.dumps(net.config.to_dict()),
                "texnet.inputs": ", ".join(names)}
    if weights_file is not None:
        refer_to_safetensors(model, weights_file)
        metadata[WEIGHTS_SHA256_KEY] = weights_digest(weights_file)
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    try:
        write_atomically(path, lambda temporary: temporary.write_bytes(model.SerializeToString()))
    except OSError as error:
        raise TexnetError(f"{path}: cannot write the ONNX file ({error.strerror or error})") from None
    return path


def refer_to_safetensors(model, weights_file: Path) -> None:
    """Point every initializer that is a tensor of `weights_file`, byte for byte, at its place in
    that file (ONNX external data), instead of storing it again. A safetensors file is an 8-byte
    header length, a JSON header, then each tensor's raw little-endian bytes: what ONNX reads."""
    from onnx import TensorProto, numpy_helper
    from safetensors.numpy import load_file

    raw = weights_file.read_bytes()
    header_length = int.from_bytes(raw[:8], "little")
    header = json.loads(raw[8: 8 + header_length])
    arrays = load_file(weights_file)
    for initializer in model.graph.initializer:
        name = initializer.name.removeprefix("net.")
        if name not in arrays or header[name]["dtype"] != "F32":
            continue
        stored = numpy_helper.to_array(initializer)
        if stored.shape != arrays[name].shape or not (stored == arrays[name]).all():
            continue  # the exporter changed it (folded constants): keep the graph's own copy
        start, stop = header[name]["data_offsets"]
        initializer.ClearField("raw_data")
        initializer.ClearField("float_data")
        initializer.data_location = TensorProto.EXTERNAL
        for key, value in (("location", weights_file.name), ("offset", str(8 + header_length + start)),
                           ("length", str(stop - start))):
            entry = initializer.external_data.add()
            entry.key, entry.value = key, value
