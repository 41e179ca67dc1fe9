"""Train (or resume) built-in models with the cpu presets and record their training.

    nohup python benchmarks/train_builtins.py [NAME ...] > runs/builtins.log 2>&1 &
    nohup python benchmarks/train_builtins.py --styles NAME ... > runs/builtin-styles.log 2>&1 &

Textures: each texture of ../shared/data/textures without a built-in model (or each one named) is
trained with `texnet train EXAMPLE --preset cpu`. Styles: each painting of ../shared/data/styles
named is trained with `texnet train-style PAINTING --content ../shared/data/content-train --preset
cpu`. Each run goes into runs/builtins/NAME (resumed from its checkpoint when a session ended
mid-run); its config, weights and ONNX graph are copied into src/texnet/pretrained/NAME, and its
wall time, peak RSS and final loss appended to runs/builtins/record.tsv for pretrained/TRAINING.md.
Already-recorded names are skipped, so the script can be re-run until all are done.
"""
import argparse
import json
import resource
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


def command(name: str, style: bool) -> list[str]:
    texnet = str(Path(sys.executable).parent / "texnet")
    run = str(RUNS / name)
    if style:
        return [texnet, "train-style", str(DATA / "styles" / f"{name}.jpg"), "--content", str(DATA / "content-train"),
                "-o", run, "--preset", "cpu"]
    return [texnet, "train", str(DATA / "textures" / f"{name}.png"), "-o", run, "--preset", "cpu"]


def train(name: str, style: bool) -> None:
    run = RUNS / name
    arguments = command(name, style) + (["--resume"] if (run / "checkpoint").exists() else [])
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
        record.write(f"{name}\t{seconds:.0f}\t{peak_mb:.0f}\t{losses}\t{info['bf16_used']}\n")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*")
    parser.add_argument("--styles", action="store_true", help="the names are paintings, trained as style models")
    args = parser.parse_args()
    RUNS.mkdir(parents=True, exist_ok=True)
    names = args.names or [path.stem for path in (DATA / "textures").glob("*.png")
                           if not (PRETRAINED / path.stem).exists()]
    for name in sorted(set(names) - recorded()):
        train(name, args.styles)
