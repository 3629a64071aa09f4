"""First-principles labeling: PySCF and GFN2-xTB labelers, structure sampling, resumable Dask
campaigns into an ASE SQLite database. Labels are in atomic units (see ``base.UNITS``).

Typical use::

    from psilearn.label import make_labeler, run_campaign
    lab = make_labeler("pbe0/def2-svp", "energy,dipole,polarizability")
    summary = run_campaign(structures, lab, "labels.db", workers=2)
"""

from psilearn.label.base import OBSERVABLES, UNITS, Labeler, LabelError, parse_observables
from psilearn.label.campaign import CampaignSummary, label_one, run_campaign
from psilearn.label.hashing import method_hash, structure_hash
from psilearn.label.registry import make_labeler
from psilearn.label.store import LabelStore

__all__ = [
    "OBSERVABLES", "UNITS", "LabelError", "Labeler", "parse_observables", "CampaignSummary",
    "label_one", "run_campaign", "method_hash", "structure_hash", "make_labeler", "LabelStore",
]
