"""Does the channels-last memory layout speed up a training step's VGG-19 pass on this CPU?

Times VGG-19's forward (relu1_1 .. relu5_1) plus the backward to the image, as one step of
`texnet train --preset cpu` does it (one 256 px sample, Gram loss), in float32 and, where the CPU
computes it natively, bfloat16; each with the default contiguous layout, with a channels-last image
(the weights as they are) and with channels-last image and weights. A random VGG of the real
widths: speed does not depend on the weights.

    python benchmarks/channels_last.py [--size 256] [--repeats 5] [--rounds 4]    # prints a markdown table
"""

from __future__ import annotations

import argparse
import platform

import torch

from measure import best_time
from texnet import runtime
from texnet.descriptor import VGG19Descriptor
from texnet.losses import gram_matrix


def step_time(vgg: VGG19Descriptor, size: int, image_layout, weight_layout, repeats: int) -> float:
    """Best time of forward + Gram loss + backward to a random image."""
    vgg = vgg.to(memory_format=weight_layout)
    image = torch.rand(1, 3, size, size).to(memory_format=image_layout).requires_grad_(True)

    def step():
        features = vgg(image)
        loss = sum(gram_matrix(value).square().sum() for value in features.values())
        loss.backward()
        image.grad = None

    return best_time(step, repeats)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=4)
    args = parser.parse_args()
    torch.manual_seed(0)
    torch.set_flush_denormal(True)
    precisions = [False, True] if runtime.native_bf16_cpu() else [False]
    print(f"{platform.processor() or platform.machine()}, capability {torch.backends.cpu.get_cpu_capability()}, "
          f"{torch.get_num_threads()} threads, {args.size} px\n")
    print("| precision | contiguous | channels-last image | channels-last image and weights |\n|---|---|---|---|")
    dense, last = torch.contiguous_format, torch.channels_last
    for bf16 in precisions:
        vgg = VGG19Descriptor(bf16=bf16)
        layouts = ((dense, dense), (last, dense), (last, last))
        # rounds in turn, the best of each: this machine's speed drifts by a quarter within minutes
        rounds = [[step_time(vgg, args.size, image, weights, args.repeats) for image, weights in layouts]
                  for _ in range(args.rounds)]
        times = [min(column) for column in zip(*rounds)]
        print(f"| {'bfloat16' if bf16 else 'float32'} | {times[0] * 1000:.0f} ms | "
              + " | ".join(f"{time * 1000:.0f} ms ({times[0] / time:.2f}x)" for time in times[1:]) + " |")


if __name__ == "__main__":
    main()
