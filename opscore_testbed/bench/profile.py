"""Where the operator's CPU goes in B1: py-spy samples it, and this module sums the samples
into a table of the top costs per step (`make bench-profile` writes it into the results).

py-spy attaches to the running operator by pid (`--nonblocking`: it reads the process's
memory without stopping it, so the profile costs the operator nearly nothing) and, on
SIGINT, writes the samples in its "raw" (collapsed stacks) format: one line per distinct
stack, `frame;frame;...;leaf COUNT`. Idle threads are not sampled (py-spy's default), so a
sample is time spent running Python or native code, not waiting.
"""

from __future__ import annotations

import re
import shutil
import signal
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

#: Samples per second.
RATE = 200
_FRAME = re.compile(r"^(?P<function>.*?) \((?P<file>[^():]*)(?::\d+)?\)$")


def _py_spy() -> str:
    found = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    if not Path(found).exists():
        raise RuntimeError("py-spy is not installed: `make venv` installs the dev extras")
    return found


class OperatorProfile:
    """py-spy recording one pid until `stop()`; the samples land in `path`."""

    def __init__(self, pid: int, path: Path) -> None:
        self.pid = pid
        self.path = path
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        argv = [
            _py_spy(),
            "record",
            "--pid",
            str(self.pid),
            "--rate",
            str(RATE),
            "--nonblocking",
            "--format",
            "raw",
            "--output",
            str(self.path),
        ]
        log = self.path.with_suffix(".log").open("wb")
        self._process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGINT (py-spy then writes its file), by its own pid; SIGKILL if it hangs."""
        if self._process is None:
            return
        self._process.send_signal(signal.SIGINT)
        try:
            self._process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self._process.kill()
            self._process.wait(timeout=timeout)
        if not self.path.exists():
            raise RuntimeError(f"py-spy wrote no profile; see {self.path.with_suffix('.log')}")


@dataclass(frozen=True)
class Cost:
    function: str  # "name (file)"
    self_ms_per_step: float
    total_ms_per_step: float


def _frame_name(frame: str) -> str:
    """`name (path/to/file.py:12)` -> `name (file.py)`: lines differ within one function."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip()
    return f"{match['function']} ({Path(match['file']).name})"


def summarise(raw: str, *, steps: int, rate: int = RATE, top: int = 15) -> tuple[float, list[Cost]]:
    """(sampled CPU ms per step, the top functions by self time with their inclusive time).
    Self: samples where the function is the leaf; total: samples where it is anywhere on
    the stack (counted once per stack, recursion or not)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    samples = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if f.strip()]
        # py-spy's first frame is the thread ("process 12:..." or "thread (0x..)").
        frames = [f for f in frames if not f.startswith(("process ", "thread "))]
        if not frames:
            continue
        samples += count
        own[frames[-1]] += count
        for name in set(frames):
            inclusive[name] += count
    per_step = 1000 / rate / steps  # ms of CPU per sample, per step
    costs = [
        Cost(name, round(n * per_step, 3), round(inclusive[name] * per_step, 3))
        for name, n in own.most_common(top)
    ]
    return round(samples * per_step, 2), costs


def markdown(costs: list[Cost], *, sampled_ms_per_step: float, steps: int, title: str) -> str:
    lines = [
        f"# {title}",
        "",
        f"py-spy at {RATE} samples/s over {steps} steps: {sampled_ms_per_step} ms of sampled"
        " operator CPU per step. Self: the function itself was running; total: it or"
        " anything it called.",
        "",
        "| function (file) | self ms/step | total ms/step |",
        "| --- | ---: | ---: |",
    ]
    for cost in costs:
        function = cost.function.replace("|", "\\|")
        lines.append(f"| `{function}` | {cost.self_ms_per_step} | {cost.total_ms_per_step} |")
    return "\n".join(lines) + "\n"
