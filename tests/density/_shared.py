"""Settings shared by the density-model tests."""

#: a small lambda-SOAP that keeps the density-model fits to seconds
SOAP = {"cutoff": 4.0, "max_radial": 4, "max_angular": 3}
