"""neff: certified Hessian spectra and effective dimensionality of neural networks."""
from .effdim import EffDimEstimate, effective_dimension, estimate_effective_dimension
from .eigen import EigenResult, top_eigenpairs
from .errors import NeffError
from .hessian import GGNOperator, HessianOperator
from .quadrature import spectral_density
from .trace import hutchinson, hutchpp
from .validate import dense_spectrum, validate

__version__ = "0.1.0"
__all__ = ["EffDimEstimate", "EigenResult", "GGNOperator", "HessianOperator", "NeffError",
           "effective_dimension", "estimate_effective_dimension", "hutchinson", "hutchpp",
           "dense_spectrum", "spectral_density", "top_eigenpairs", "validate"]
