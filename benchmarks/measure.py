"""Shared benchmark helpers: run a measurement in a fresh process (clean peak memory), write tables."""

from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import torch


def peak_rss_mb() -> float:
    """This process's peak resident memory so far, from /proc (Linux).

    Not getrusage's ru_maxrss: Linux carries the parent's peak into a forked child, so a
    child of a large process would report the parent's peak.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def run_isolated(script: Path, job: dict) -> dict:
    """Run `script --job JSON` in a new interpreter; it prints one JSON line with its results."""
    output = subprocess.run([sys.executable, str(script), "--job", json.dumps(job)],
                            capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def machine_description() -> str:
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def markdown_table(header: list[str], rows: list[list]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def write_report(name: str, text: str) -> None:
    """Write `text` to benchmarks/out/`name` and print it."""
    out = Path(__file__).resolve().parent / "out"
    out.mkdir(exist_ok=True)
    (out / name).write_text(text)
    print(text)
