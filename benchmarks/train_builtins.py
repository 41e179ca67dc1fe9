"""Train (or resume) built-in models with the cpu presets and record their training.

    nohup python benchmarks/train_builtins.py [NAME ...] > runs/builtins.log 2>&1 &
    nohup python benchmarks/train_builtins.py --styles NAME ... > runs/builtin-styles.log 2>&1 &
    nohup python benchmarks/train_builtins.py --iters 1500 NAME ... > runs/builtins.log 2>&1 &
    nohup python benchmarks/train_builtins.py --iters 1500 --texnet "--ema 0.99" NAME ... > runs/builtins.log 2>&1 &

Textures: each texture of ../shared/data/textures without a built-in model (or each one named) is
trained with `texnet train EXAMPLE --preset cpu`. Styles: each painting of ../shared/data/styles
named is trained with `texnet train-style PAINTING --content ../shared/data/content-train --preset
cpu`; `--iters N` passes `--iters N` (the preset's schedule stretched to N iterations), in the
order given; `--texnet ARGS` passes more arguments to texnet. Each run goes into runs/builtins/NAME
(resumed from its checkpoint when a session ended mid-run); its config, weights and ONNX graph are
copied into src/texnet/pretrained/NAME, and its wall time, peak RSS and final loss appended to
runs/builtins/record.tsv for pretrained/TRAINING.md.
Already-recorded names are skipped, so the script can be re-run until all are done.
"""
import argparse
import json
import resource
import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT.parent / "shared" / "data"
RUNS = ROOT / "runs" / "builtins"
PRETRAINED = ROOT / "src" / "texnet" / "pretrained"
RECORD = RUNS / "record.tsv"


def recorded() -> set[str]:
    return {line.split("\t")[0] for line in RECORD.read_text().splitlines()} if RECORD.exists() else set()


def command(name: str, style: bool, iters: int | None, extra: list[str]) -> list[str]:
    texnet = str(Path(sys.executable).parent / "texnet")
    run = str(RUNS / name)
    options = (["--iters", str(iters)] if iters else []) + extra
    if style:
        return [texnet, "train-style", str(DATA / "styles" / f"{name}.jpg"), "--content", str(DATA / "content-train"),
                "-o", run, "--preset", "cpu", *options]
    return [texnet, "train", str(DATA / "textures" / f"{name}.png"), "-o", run, "--preset", "cpu", *options]


def train(name: str, style: bool, iters: int | None, extra: list[str]) -> None:
    run = RUNS / name
    arguments = command(name, style, iters, extra) + (["--resume"] if (run / "checkpoint").exists() else [])
    start = time.perf_counter()
    subprocess.run(arguments, check=True)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    info = json.loads((run / "config.json").read_text())["training"]
    (PRETRAINED / name).mkdir(exist_ok=True)
    for file in ("config.json", "model.safetensors", "model.onnx"):
        shutil.copy(run / file, PRETRAINED / name / file)
    losses = f"{info['final_style_loss']:.3g}\t{info['final_content_loss']:.3g}" if style else f"{info['final_loss']:.3g}"
    with RECORD.open("a") as record:
        record.write(f"{name}\t{seconds:.0f}\t{peak_mb:.0f}\t{losses}\t{info['bf16_used']}\t{info['iterations']}\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--styles", action="store_true", help="the names are paintings, trained as style models")
    parser.add_argument("--iters", type=int, help="iterations (the preset's schedule stretched to match)")
    parser.add_argument("--texnet", default="", metavar="ARGS", help="more texnet arguments, in one string")
    args = parser.parse_args()
    extra = shlex.split(args.texnet)
    RUNS.mkdir(parents=True, exist_ok=True)
    names = args.names or sorted(path.stem for path in (DATA / "textures").glob("*.png")
                                 if not (PRETRAINED / path.stem).exists())
    done = recorded()
    for name in dict.fromkeys(names):  # in the order given: the ones that need it most first
        if name not in done:
            train(name, args.styles, args.iters, extra)
