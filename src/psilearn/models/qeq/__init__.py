"""Charge equilibration with learned electronegativities (the physics is in :mod:`psilearn.physics`).

* :mod:`.model`       :class:`QEqModel` (kind ``qeq``): kernel electronegativities; fit to charges,
  dipoles or both; predict with uncertainty
* :mod:`.chi_kernel`  the SOAP kernel of chi (optionally times a state kernel)
* :mod:`.atomic_dipoles` optional learned atomic dipoles
* :mod:`.linear_maps` charges and dipoles as linear maps of chi
* :mod:`.checks`      which Targets QEq learns; reference charges (shared by both backends)
* :mod:`.state`       model-file state of the kernel model
* NN backend (kind ``qeq-nn``, imports torch): :mod:`.nn_chi` (chi network, learned hardness),
  :mod:`.nn_loss` (QEq in torch, training loss), :mod:`.nn_llpr` (LLPR through QEq),
  :mod:`.nn_model` (:class:`QEqNNModel`)
"""

__all__ = ["QEqModel", "QEqConfig", "QEqNNModel", "QEqNNConfig"]


def __getattr__(name):  # the models import featomic / torch lazily
    if name in ("QEqModel", "QEqConfig"):
        from psilearn.models.qeq import model

        return getattr(model, name)
    if name in ("QEqNNModel", "QEqNNConfig"):
        from psilearn.models.qeq import nn_model

        return getattr(nn_model, name)
    raise AttributeError(name)
