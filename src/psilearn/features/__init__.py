"""Descriptors: lambda-SOAP (equivariant SOAP) features via featomic, in e3nn's harmonic basis."""

from psilearn.features.lsoap import AtomFeatures, LambdaSoap, SoapConfig

__all__ = ["LambdaSoap", "SoapConfig", "AtomFeatures"]
