"""The memory guard: estimate a large allocation before making it, and refuse it with one line.

``available_bytes()`` is the memory this process may still use: ``PSILEARN_MEMORY_LIMIT`` when set
(bytes, or with a unit: ``8G``, ``512M``, ``1.5T``; binary units), otherwise the smaller of
``MemAvailable`` in /proc/meminfo and the cgroup's limit minus its usage (containers, SLURM jobs),
or psutil's ``available`` where /proc is absent; None if nothing can be read (the guard then lets
the step run). ``check_allocation(nbytes, what, hint)`` raises :class:`MemoryBudgetError` when
``nbytes`` exceeds ``SAFETY`` x available, naming the step, both sizes in GB and the setting to change.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

from psilearn.errors import ConfigError, MemoryBudgetError

__all__ = ["ENV_VAR", "SAFETY", "MemoryBudgetError", "available_bytes", "check_allocation", "fits", "parse_size"]

ENV_VAR = "PSILEARN_MEMORY_LIMIT"
#: a step may use at most this fraction of the available memory (the estimates leave out small
#: temporaries, Python objects and the libraries' own buffers)
SAFETY = 0.8
_UNITS = {"": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}


def parse_size(text: str) -> int:
    """'8G' -> 8 * 2**30 bytes; '512M', '1.5T', '1000000' (bytes) and a trailing 'B'/'iB' also read."""
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+)\s*([KMGT]?)(I?B)?\s*", str(text).upper())
    if not m or float(m.group(1)) <= 0:
        raise ConfigError(f"{ENV_VAR}={text!r}: expected a positive size such as 8G, 512M or 1000000 (bytes)")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def _meminfo_available() -> int | None:
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def _cgroup_available() -> int | None:
    """Limit minus usage of this process's memory cgroup (v2, then v1); None without a finite limit."""
    for limit_file, usage_file in (
        ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory.current"),
        ("/sys/fs/cgroup/memory/memory.limit_in_bytes", "/sys/fs/cgroup/memory/memory.usage_in_bytes"),
    ):
        try:
            limit = Path(limit_file).read_text().strip()
            usage = int(Path(usage_file).read_text().strip())
        except (OSError, ValueError):
            continue
        if limit.isdigit() and int(limit) < 2**60:  # "max" or a huge number: no limit
            return max(int(limit) - usage, 0)
    return None


def available_bytes() -> int | None:
    """Bytes this process may still allocate (see the module docstring), or None if unknown."""
    override = os.environ.get(ENV_VAR, "").strip()
    if override:
        return parse_size(override)
    found = [v for v in (_meminfo_available(), _cgroup_available()) if v is not None]
    if not found:
        try:
            import psutil

            found = [int(psutil.virtual_memory().available)]
        except Exception:  # noqa: BLE001 - psutil absent or unsupported: no estimate
            return None
    return min(found)


def gb(nbytes: float) -> str:
    return f"{nbytes / 1e9:.2f} GB" if nbytes < 1e10 else f"{nbytes / 1e9:.0f} GB"


def fits(nbytes: float, avail: int | None = None) -> bool:
    """True if ``nbytes`` is within SAFETY x the available memory (``avail``, default
    :func:`available_bytes`; unknown: True)."""
    avail = available_bytes() if avail is None else avail
    return avail is None or nbytes <= SAFETY * avail


def check_allocation(nbytes: float, what: str, setting_hint: str) -> None:
    """Raise MemoryBudgetError if ``nbytes`` (the estimate of the step ``what``) exceeds SAFETY x
    the available memory; ``setting_hint`` names what to change, e.g. "soap.max_radial"."""
    avail = available_bytes()
    if fits(nbytes, avail):
        return
    source = f"set by {ENV_VAR}={os.environ[ENV_VAR].strip()}" if os.environ.get(ENV_VAR, "").strip() else "available now"
    raise MemoryBudgetError(
        f"{what} needs about {gb(nbytes)} of memory but at most {gb(SAFETY * avail)} may be used ({SAFETY:.0%} of the "
        f"{gb(avail)} {source}); reduce {setting_hint}"
    )
