"""Long work the web app runs in the background: training a texture model, the Gatys baseline.

One heavy job runs at a time (on a 2-core machine two would only halve each other); each
reports progress, can be cancelled between steps, and keeps its outcome for the page to fetch.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from ..errors import TexnetError


class Busy(Exception):
    """Another heavy job is running."""


class Cancelled(Exception):
    """Raised inside a job's step callback when the user cancelled it."""


@dataclass
class Job:
    kind: str  # "train" or "gatys"
    iterations: int
    id: str = field(default_factory=lambda: uuid.uuid4().hex)
    state: str = "running"  # running, done, cancelled, failed
    iteration: int = 0
    losses: list[float] = field(default_factory=list)
    previews: list[str] = field(default_factory=list)  # result URLs, newest last
    result: dict = field(default_factory=dict)
    error: str | None = None
    started: float = field(default_factory=time.monotonic)
    seconds: float | None = None
    cancel_requested: bool = False

    def step(self, iteration: int, loss: float) -> None:
        """Record progress; called from the work's step callback, which is where cancelling happens."""
        if self.cancel_requested:
            raise Cancelled
        self.iteration = iteration
        self.losses.append(loss)

    def as_dict(self) -> dict:
        return {"id": self.id, "kind": self.kind, "state": self.state, "iteration": self.iteration,
                "iterations": self.iterations, "losses": self.losses[-500:], "previews": self.previews,
                "result": self.result, "error": self.error,
                "seconds": self.seconds if self.seconds is not None else time.monotonic() - self.started}


class Jobs:
    def __init__(self):
        self.lock = threading.Lock()
        self.jobs: dict[str, Job] = {}

    def running(self) -> Job | None:
        return next((job for job in self.jobs.values() if job.state == "running"), None)

    def start(self, kind: str, iterations: int, work: Callable[[Job], dict]) -> Job:
        """Run work(job) in a thread; refused with Busy while another job runs."""
        with self.lock:
            if (busy := self.running()) is not None:
                raise Busy(f"a {busy.kind} job is running ({busy.iteration} of {busy.iterations} steps); "
                           "wait for it or cancel it")
            job = Job(kind, iterations)
            self.jobs[job.id] = job
        threading.Thread(target=self.run, args=(job, work), daemon=True, name=f"texnet-{kind}").start()
        return job

    @staticmethod
    def run(job: Job, work: Callable[[Job], dict]) -> None:
        try:
            job.result = work(job)
            job.state = "done"
        except Cancelled:
            job.state = "cancelled"
        except TexnetError as error:
            job.state, job.error = "failed", str(error)
        except Exception as error:  # a bug: say so on the page rather than leave the job "running"
            job.state, job.error = "failed", f"internal error: {type(error).__name__}: {error}"
        finally:
            job.seconds = time.monotonic() - job.started

    def get(self, job_id: str) -> Job:
        if job_id not in self.jobs:
            raise TexnetError(f"no job {job_id!r}")
        return self.jobs[job_id]
