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
    function: str  # "name (file)", or a package for the by-package table
    self_ms_per_step: float
    total_ms_per_step: float


@dataclass(frozen=True)
class Profile:
    """The samples summed: top functions by self time, top Ops-Core functions by total
    time, and self time by package. Milliseconds are the operator's measured CPU per step
    (/proc) split by sample share: under load a runnable-but-waiting thread is sampled as
    busy, so the samples give proportions, not absolute time."""

    samples: int
    cpu_ms_per_step: float
    functions: list[Cost]
    opscore_functions: list[Cost]
    packages: list[Cost]


def _frame_name(frame: str) -> tuple[str, str]:
    """`name (path/to/file.py:12)` -> (`name (file.py)`, package): lines differ within one
    function; the package is the path's first part (`aiohttp`, `opscore_operator`, ...)."""
    match = _FRAME.match(frame.strip())
    if not match:
        return frame.strip(), "?"
    path = match["file"]
    parts = Path(path).parts
    package = parts[0] if len(parts) > 1 else Path(path).stem
    if package.startswith("<frozen"):
        package = "stdlib"
    return f"{match['function']} ({Path(path).name})", package


def summarise(raw: str, *, cpu_ms_per_step: float, top: int = 15) -> Profile:
    """Sum py-spy's raw samples. Self: samples where the function is the leaf; total:
    samples where it is anywhere on the stack (counted once per stack)."""
    own: Counter[str] = Counter()
    inclusive: Counter[str] = Counter()
    by_package: Counter[str] = Counter()
    package_of: dict[str, str] = {}
    samples = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = [_frame_name(f) for f in stack.split(";") if f.strip()]
        # py-spy may start a stack with the thread ("process 12:..." or "thread (0x..)").
        frames = [f for f in frames if not f[0].startswith(("process ", "thread "))]
        if not frames:
            continue
        samples += count
        own[frames[-1][0]] += count
        by_package[frames[-1][1]] += count
        for name, package in set(frames):
            inclusive[name] += count
            package_of[name] = package
    if not samples:
        raise ValueError("the profile holds no samples")
    share = cpu_ms_per_step / samples

    def cost(name: str, n: int) -> Cost:
        return Cost(name, round(n * share, 3), round(inclusive.get(name, n) * share, 3))

    opscore = Counter({n: c for n, c in inclusive.items() if package_of[n].startswith("opscore_")})
    return Profile(
        samples=samples,
        cpu_ms_per_step=cpu_ms_per_step,
        functions=[cost(n, c) for n, c in own.most_common(top)],
        opscore_functions=[
            Cost(n, round(own.get(n, 0) * share, 3), round(c * share, 3))
            for n, c in opscore.most_common(top)
        ],
        packages=[
            Cost(n, round(c * share, 3), round(c * share, 3))
            for n, c in by_package.most_common(top)
        ],
    )


def markdown(profile: Profile, *, title: str, measured: str) -> str:
    """The profile as three tables under `title`; `measured` says when, where and by
    which command (a profile's proportions move with the host, like its figures)."""
    lines = [
        f"# {title}",
        "",
        measured,
        "",
        f"py-spy at {RATE} samples/s ({profile.samples} samples), scaled to the operator's"
        f" measured CPU: {profile.cpu_ms_per_step} ms per step (/proc utime + stime). Self:"
        " the function itself was running; total: it or anything it called.",
    ]
    for heading, costs, total in (
        ("Self time by package", profile.packages, False),
        ("Top functions by self time", profile.functions, True),
        ("Ops-Core's functions by total time", profile.opscore_functions, True),
    ):
        lines += ["", f"## {heading}", ""]
        if total:
            lines += ["| function (file) | self ms/step | total ms/step |", "| --- | ---: | ---: |"]
        else:
            lines += ["| package | self ms/step |", "| --- | ---: |"]
        for c in costs:
            name = c.function.replace("|", "\\|")
            if total:
                lines.append(f"| `{name}` | {c.self_ms_per_step} | {c.total_ms_per_step} |")
            else:
                lines.append(f"| `{name}` | {c.self_ms_per_step} |")
    return "\n".join(lines) + "\n"
