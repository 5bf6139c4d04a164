"""Which parameters enter the Hessian, and moving between a flat vector and named tensors."""
from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Iterable, Sequence

import torch

from .errors import NeffError

SELECTIONS = ("all", "weights")


def select_parameters(model: torch.nn.Module, params: str | Sequence[str] = "all") -> list[str]:
    """Names of the trainable parameters selected by ``params``.

    ``"all"``: every parameter with ``requires_grad``; ``"weights"``: those with more than one
    dimension (the paper's choice: no biases, no BatchNorm scales); a list of glob patterns
    (``fnmatch`` style, e.g. ``["layer4.*", "*.weight"]``) matched against parameter names.
    """
    trainable = [(name, p) for name, p in model.named_parameters() if p.requires_grad]
    if not trainable:
        raise NeffError("the model has no trainable parameters (all have requires_grad=False); "
                        "enable gradients on the parameters whose Hessian you want")
    if isinstance(params, str):
        if params not in SELECTIONS:
            raise NeffError(f"params={params!r} is not a selection; use 'all', 'weights' or a list of "
                            "name patterns such as ['*.weight']")
        if params == "all":
            return [name for name, _ in trainable]
        chosen = [name for name, p in trainable if p.dim() > 1]
        if not chosen:
            raise NeffError("params='weights' selects nothing: no trainable parameter has more than "
                            "one dimension; use params='all'")
        return chosen
    patterns = list(params)
    names = [name for name, _ in trainable]
    for pattern in patterns:
        if not any(fnmatchcase(name, pattern) for name in names):
            raise NeffError(f"pattern {pattern!r} matches no trainable parameter; names are "
                            f"{_preview(names)}")
    return [name for name in names if any(fnmatchcase(name, pat) for pat in patterns)]


def _preview(names: list[str], limit: int = 12) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", ... ({len(names)} in all)" if len(names) > limit else "")


class FlatLayout:
    """The order, shapes and sizes of named tensors laid end to end in one vector."""

    def __init__(self, tensors: dict[str, torch.Tensor]):
        self.names = list(tensors)
        self.shapes = [tuple(t.shape) for t in tensors.values()]
        self.sizes = [t.numel() for t in tensors.values()]
        self.size = sum(self.sizes)

    def split(self, flat: torch.Tensor) -> dict[str, torch.Tensor]:
        """View ``flat`` (..., size) as named tensors with the same leading dimensions."""
        lead = flat.shape[:-1]
        pieces = torch.split(flat, self.sizes, dim=-1)
        return {name: piece.reshape(*lead, *shape)
                for name, piece, shape in zip(self.names, pieces, self.shapes)}

    def join(self, tensors: dict[str, torch.Tensor], lead: Iterable[int] = ()) -> torch.Tensor:
        """Concatenate named tensors (with leading dimensions ``lead``) into (..., size)."""
        lead = tuple(lead)
        return torch.cat([tensors[name].reshape(*lead, -1) for name in self.names], dim=-1)
