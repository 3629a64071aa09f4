"""Memory of the density fit by stage (sparse selection, accumulation, solve): RSS and numpy allocations.

    python benchmarks/density_fit_memory_stages.py /work/bench/methanol_density.xyz 100   # and 400

Fits the density model (CG, disk store, fixed lambda 1e-4, 3 iterations) on the first N frames with
tracemalloc on, and prints after each stage the process RSS and high-water mark (MB, /proc/self/status)
and tracemalloc's current and peak (MB) since the previous stage (numpy registers its buffers;
native allocations of PySCF or featomic are not seen). Internals are wrapped, not changed.
"""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
import sys  # noqa: E402
import tracemalloc  # noqa: E402

from psilearn.data import load_density_dataset  # noqa: E402
from psilearn.models.density import fit as fm  # noqa: E402
from psilearn.models.density.model import DensityModel  # noqa: E402
from psilearn.models.factory import fit_model  # noqa: E402


def rss():
    d = dict(l.split(":", 1) for l in open("/proc/self/status"))
    return round(int(d["VmRSS"].split()[0]) / 1024), round(int(d["VmHWM"].split()[0]) / 1024)

path, n = sys.argv[1], int(sys.argv[2])
data = load_density_dataset(f"{path}@:{n}")
tracemalloc.start()
orig = DensityModel._choose_sparse
def chs(self, *a):
    orig(self, *a)
    cur, peak = tracemalloc.get_traced_memory()
    print(n, "sparse selection: rss/hwm", rss(), "traced cur/peak MB", round(cur / 2**20), round(peak / 2**20), flush=True)
    tracemalloc.reset_peak()
DensityModel._choose_sparse = chs
orig_acc = fm.accumulate
def acc(*a, **k):
    r = orig_acc(*a, **k)
    cur, peak = tracemalloc.get_traced_memory()
    print(n, "accumulate: rss/hwm", rss(), "traced cur/peak MB", round(cur / 2**20), round(peak / 2**20), flush=True)
    tracemalloc.reset_peak()
    return r
fm.accumulate = acc
m = fit_model("density", data.target, data, {"density": {"solver": "cg", "regularization": 1e-4, "cg_maxiter": 3, "cg_storage": "disk",
                                                        "cg_scratch": os.environ.get("TMPDIR", "")}})
cur, peak = tracemalloc.get_traced_memory()
print(n, "solve: rss/hwm", rss(), "traced cur/peak MB", round(cur / 2**20), round(peak / 2**20), m.metadata["n_weights"], flush=True)
