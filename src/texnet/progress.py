"""Progress bars that suit where the output goes: live on a terminal, a line every half minute in a log."""

from __future__ import annotations

import sys

from tqdm.auto import tqdm


def progress_bar(*args, enabled: bool = True, **kwargs) -> tqdm:
    """tqdm on stderr; off a terminal (a log file, a CI job) it updates at most every 30 s, so a
    long training run leaves a readable log instead of megabytes of carriage returns."""
    terminal = sys.stderr.isatty()
    return tqdm(*args, disable=not enabled, mininterval=0.1 if terminal else 30, dynamic_ncols=terminal, **kwargs)
