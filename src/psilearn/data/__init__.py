"""Reading structures and labels, validating them against a Target, and splitting data sets."""

from psilearn.data.dataset import Dataset, load_dataset
from psilearn.data.density import DensityDataset, density_target, load_density_dataset
from psilearn.data.errors import DataError
from psilearn.data.hamiltonian import HamiltonianDataset, hamiltonian_target, load_hamiltonian_dataset
from psilearn.data.io import read_structures, write_structures
from psilearn.data.splits import farthest_point_split, group_split, random_split

__all__ = [
    "DataError",
    "read_structures",
    "write_structures",
    "Dataset",
    "load_dataset",
    "DensityDataset",
    "density_target",
    "load_density_dataset",
    "HamiltonianDataset",
    "hamiltonian_target",
    "load_hamiltonian_dataset",
    "random_split",
    "farthest_point_split",
    "group_split",
]
