"""neff: certified Hessian spectra and effective dimensionality of neural networks.

The names below load their module on first use, so a job that needs only part of neff (the
data, a model, the measures) does not pay for importing the rest."""
import importlib

from .files import version

_EXPORTS = {
    "effdim": ["EffDimEstimate", "effective_dimension", "estimate_effective_dimension"],
    "eigen": ["EigenResult", "dense_spectrum", "exact_eigenpairs", "top_eigenpairs"],
    "errors": ["NeffError"],
    "hessian": ["GGNOperator", "HessianOperator"],
    "measures": ["generalization_measures", "parameter_norm", "path_norm", "sharpness_sigma"],
    "objective": ["Objective"],
    "quadrature": ["spectral_density"],
    "trace": ["hutchinson", "hutchpp"],
    "validate": ["dense_check"],
}
_MODULE_OF = {name: module for module, names in _EXPORTS.items() for name in names}

__version__ = version()
__all__ = sorted(_MODULE_OF)


def __getattr__(name: str):
    if name not in _MODULE_OF:
        raise AttributeError(f"module 'neff' has no attribute {name!r}")
    return getattr(importlib.import_module(f".{_MODULE_OF[name]}", __name__), name)


def __dir__():
    return sorted([*globals(), *__all__])
