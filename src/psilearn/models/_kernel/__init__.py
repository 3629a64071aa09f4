"""Kernel machinery shared by every kernel architecture (sagpr, qeq, spectrum), written once: the
whitened sparse GP and its column fits (``gpr``), lambda-SOAP kernels (``kernels``), sparse-point
selection (``sparse``) and kernels on the electronic state (``state_kernel``)."""
