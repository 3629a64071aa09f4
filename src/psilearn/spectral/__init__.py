"""Spectral primitives shared by data readers, models and observables: Gaussian broadening, grid
shifts, peak finding, PCA of spectra and spectral similarity metrics (numpy/scipy only)."""
