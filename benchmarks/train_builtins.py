"""Train (or resume) every built-in texture with the cpu preset and record its training.

    nohup python benchmarks/train_builtins.py [NAME ...] > runs/builtins.log 2>&1 &

Each texture of ../shared/data/textures without a built-in model (or each one named) is trained
into runs/builtins/NAME (resumed from its checkpoint when a session ended mid-run), its config,
weights and ONNX graph copied into src/texnet/pretrained/NAME, and its wall time, peak RSS and
final loss appended to runs/builtins/record.tsv for pretrained/TRAINING.md.
Already-recorded textures are skipped, so the script can be re-run until all are done.
"""
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TEXTURES = ROOT.parent / "shared" / "data" / "textures"
RUNS = ROOT / "runs" / "builtins"
PRETRAINED = ROOT / "src" / "texnet" / "pretrained"
RECORD = RUNS / "record.tsv"


def recorded() -> set[str]:
    return {line.split("\t")[0] for line in RECORD.read_text().splitlines()} if RECORD.exists() else set()


def train(example: Path) -> None:
    name, run = example.stem, RUNS / example.stem
    command = [str(Path(sys.executable).parent / "texnet"), "train", str(example), "-o", str(run), "--preset", "cpu"]
    if (run / "checkpoint").exists():
        command.append("--resume")
    start = time.perf_counter()
    subprocess.run(command, check=True)
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024  # the largest child so far
    info = json.loads((run / "config.json").read_text())["training"]
    (PRETRAINED / name).mkdir(exist_ok=True)
    for file in ("config.json", "model.safetensors", "model.onnx"):
        shutil.copy(run / file, PRETRAINED / name / file)
    with RECORD.open("a") as record:
        record.write(f"{name}\t{seconds:.0f}\t{peak_mb:.0f}\t{info['final_loss']:.3g}\t{info['bf16_used']}\n")


if __name__ == "__main__":
    RUNS.mkdir(parents=True, exist_ok=True)
    names = sys.argv[1:] or [path.stem for path in TEXTURES.glob("*.png") if not (PRETRAINED / path.stem).exists()]
    for name in sorted(set(names) - recorded()):
        train(TEXTURES / f"{name}.png")
