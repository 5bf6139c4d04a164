"""neff: certified Hessian spectra and effective dimensionality of neural networks."""
from .errors import NeffError
from .eigen import EigenResult, top_eigenpairs
from .hessian import GGNOperator, HessianOperator

__version__ = "0.1.0"
