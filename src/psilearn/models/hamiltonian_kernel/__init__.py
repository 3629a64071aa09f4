"""The ``hamiltonian-sagpr`` model kind: sparse SA-GPR of AO Hamiltonian blocks on atom and pair lambda-SOAP."""
