"""The ``hamiltonian`` model kind: equivariant node/edge network for AO Fock/Kohn-Sham matrices."""
