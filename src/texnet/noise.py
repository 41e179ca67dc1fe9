"""The noise a texture generator samples from, the same on every backend and in every strip.

Each scale's uniform noise is drawn in blocks of rows, each block from its own NumPy generator
keyed by (seed, scale, block). So a seed gives the same texture whether PyTorch or onnxruntime
runs the net, and strip-wise inference can draw just the rows a strip needs, without holding
the noise of an 8192 x 8192 sample in memory.
"""

from __future__ import annotations

import numpy as np

BLOCK_ROWS = 16


def noise_rows(seed: int, scale: int, channels: int, width: int, start: int, stop: int) -> np.ndarray:
    """Rows [start, stop) of scale `scale`'s noise for `seed`: (channels, stop - start, width), float32 in [0, 1)."""
    if stop <= start:
        return np.zeros((channels, 0, width), np.float32)
    first, last = start // BLOCK_ROWS, (stop - 1) // BLOCK_ROWS
    blocks = [np.random.default_rng([seed, scale, block]).random((channels, BLOCK_ROWS, width), dtype=np.float32)
              for block in range(first, last + 1)]
    rows = np.concatenate(blocks, axis=1)
    offset = start - first * BLOCK_ROWS
    return rows[:, offset: offset + stop - start]


def noise_pyramid(seed: int, sizes: list[tuple[int, int]], channels: int) -> list[np.ndarray]:
    """The whole noise of one sample: (channels, h, w) for each scale size, finest first."""
    return [noise_rows(seed, scale, channels, width, 0, height) for scale, (height, width) in enumerate(sizes)]


def batch_noise(seeds: list[int], sizes: list[tuple[int, int]], channels: int) -> list[np.ndarray]:
    """Noise for a batch, (len(seeds), channels, h, w) per scale: sample i depends on seeds[i] alone."""
    per_sample = [noise_pyramid(seed, sizes, channels) for seed in seeds]
    return [np.stack(scale) for scale in zip(*per_sample)]
