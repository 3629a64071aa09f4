"""Active learning (layer 6: a loop that drives labelers and models).

``psilearn active POOL --target KEY (--oracle KEY | --method METHOD) --init N0 --batch B --budget N
-o MODEL``: fit -> predict the unlabelled pool with uncertainty -> pick a diverse batch of large
predictive variance (:mod:`~psilearn.active.selection`) -> label (the pool's own labels, or a method
through the resumable label store, :mod:`~psilearn.active.labels`) -> refit, until the budget is
spent. The log (:mod:`~psilearn.active.state`) makes a killed run resume without losing or
duplicating a label. See docs/fidelity.md, "Active learning".
"""

from psilearn.active.loop import run_active
from psilearn.active.options import ActiveOptions

__all__ = ["ActiveOptions", "run_active"]
