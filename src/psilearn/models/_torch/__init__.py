"""Torch machinery shared by every network architecture (nn, qeq-nn), written once: radial basis and
neighbour graphs (``radial``, ``graph``), the equivariant network (``network``), the training loop
with a required, pluggable loss (``train``), safetensors checkpoints (``checkpoint``), run options
(``run_options``) and LLPR/ensemble uncertainty (``uncertainty``). Importing it imports torch."""
