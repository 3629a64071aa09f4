"""`evaluate` for hamiltonian models: the MD17-Hamiltonian metrics on labelled test structures."""

from __future__ import annotations

from psilearn.metrics.hamiltonian import dataset_metrics


def evaluate_hamiltonian(model, model_name: str, data_or_path, plot=None) -> dict:
    """Test errors of a hamiltonian ``model`` on structures labelled with ``--observables hamiltonian``
    (a path/spec, a list of Atoms or a HamiltonianDataset in the model's basis). Returns a JSON-able
    dict: ``hamiltonian`` ({h_mae, occupied_energy_mae, gap_mae, coefficient_cosine, n_structures},
    Hartree), ``n_structures``, ``n_samples`` (structures), ``units``, ``target``, ``model``, ``test``."""
    from psilearn.data.hamiltonian import HamiltonianDataset, load_hamiltonian_dataset
    from psilearn.errors import ConfigError

    if plot:
        raise ConfigError(f"{model_name}: --plot is not available for hamiltonian models (the metrics are printed)")
    ds = data_or_path if isinstance(data_or_path, HamiltonianDataset) else load_hamiltonian_dataset(data_or_path, model.target)
    m = dataset_metrics(model.predict(ds.frames).matrices, ds)
    return {"hamiltonian": m, "n_structures": len(ds), "n_samples": len(ds), "units": "Hartree",
            "target": model.target.to_dict(), "model": model_name, "test": ds.name or "<memory>"}
