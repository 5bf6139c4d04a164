"""neff: certified Hessian spectra and effective dimensionality of neural networks."""
from .effdim import EffDimEstimate, effective_dimension, estimate_effective_dimension
from .eigen import EigenResult, dense_spectrum, exact_eigenpairs, top_eigenpairs
from .errors import NeffError
from .files import version
from .hessian import GGNOperator, HessianOperator
from .objective import Objective
from .quadrature import spectral_density
from .trace import hutchinson, hutchpp
from .validate import dense_check

__version__ = version()
__all__ = ["EffDimEstimate", "EigenResult", "GGNOperator", "HessianOperator", "NeffError", "Objective",
           "dense_check", "dense_spectrum", "effective_dimension", "estimate_effective_dimension",
           "exact_eigenpairs", "hutchinson", "hutchpp", "spectral_density", "top_eigenpairs"]
