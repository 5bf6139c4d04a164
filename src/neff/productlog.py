"""A record of the products a Krylov run asked for, so the run can be resumed or extended.

Lanczos is deterministic given its start vector and the products it receives. Replaying the
stored products H q_j therefore reproduces an interrupted run exactly, and a longer run
re-uses every product of a shorter one for free. Each stored product keeps a fingerprint of
the vector it belongs to, so a replay whose Krylov vectors drift from the recorded run is
caught at once. The checkpoint header identifies the operator (parameters, kind, dtype) and
the seed, not the data: resume with the same data.

The products are kept in memory for the whole run (n x steps numbers in the operator's
dtype, as many as the Lanczos basis itself), which is what makes extending a run free.
"""
from __future__ import annotations

from pathlib import Path

import torch
from tqdm.auto import tqdm

from .distributed import is_main
from .errors import NeffError
from .hessian import CurvatureOperator
from .files import atomic_path

FORMAT = "neff-product-log/1"


def save_checkpoint(path: Path, header: dict, **state) -> None:
    """Write ``state`` with the ``header`` that identifies its run, atomically; in a distributed
    run, rank 0 writes for all (the ranks hold the same state)."""
    if not is_main():
        return
    with atomic_path(path) as tmp:
        torch.save({"header": header, **state}, tmp)


def load_checkpoint(path: Path, header: dict, name: str, differs: str) -> dict:
    """The state saved at ``path`` by :func:`save_checkpoint`, refused in one sentence (naming the
    ``name``d checkpoint and what ``differs``) when it cannot be read or has another header."""
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:
        raise NeffError(f"{name} {path} cannot be read ({err}); delete it to start afresh") from None
    if not isinstance(state, dict) or state.get("header") != header:
        raise NeffError(f"{name} {path} belongs to another run ({differs}); delete it or pass another "
                        "checkpoint path")
    return state


class ProductLog:
    """Computes (or replays) operator products for a float64 Krylov process.

    ``path``: optional checkpoint file; products are saved there every ``save_every`` new
    products and when the run stops, including by an exception or Ctrl-C. The progress bar
    counts replayed products too, against the ``total`` a run announces (``expect``).
    """

    def __init__(self, operator: CurvatureOperator, seed: int, path: str | Path | None = None,
                 save_every: int = 10, progress: bool | None = None, total: int | None = None):
        self.operator = operator
        self.seed = seed
        self.path = Path(path) if path is not None else None
        self.save_every = save_every
        self.products: list[torch.Tensor] = []
        self.keys: list[torch.Tensor] = []
        self.position = 0
        self.unsaved = 0
        n = operator.num_params
        probe = torch.Generator().manual_seed(2**31 - 1)
        self._probe = torch.randn(n, generator=probe, dtype=torch.float64).to(operator.device)
        if self.path is not None and self.path.exists():
            self._load()
        self.bar = tqdm(total=total, desc=f"{operator.kind} products", unit="hvp",
                        disable=not is_main() or (None if progress is None else not progress), leave=False)

    def _header(self) -> dict:
        return {"format": FORMAT, "operator": self.operator.fingerprint(), "seed": self.seed,
                "n": self.operator.num_params}

    def _load(self) -> None:
        state = load_checkpoint(self.path, self._header(), "checkpoint", "different operator, parameters or seed")
        device = self.operator.device
        self.products = [p.to(device) for p in state["products"]]
        self.keys = [k.to(device) for k in state["keys"]]

    def save(self) -> None:
        if self.path is None or self.unsaved == 0:
            return
        save_checkpoint(self.path, self._header(), products=[p.cpu() for p in self.products],
                        keys=[k.cpu() for k in self.keys])
        self.unsaved = 0

    def _key(self, q: torch.Tensor) -> torch.Tensor:
        return torch.stack([q @ self._probe, q.norm()])

    def __call__(self, q: torch.Tensor) -> torch.Tensor:
        """H q for q of shape (n, 1), float64, replayed when this run already has it."""
        key = self._key(q[:, 0])
        if self.position < len(self.products):
            stored = self.keys[self.position]
            if not torch.allclose(key, stored, rtol=1e-9, atol=1e-12 * float(stored[1])):
                raise NeffError("a replayed Lanczos run diverged from its checkpoint (its vectors "
                                "differ from the recorded ones); delete the checkpoint file to start afresh")
            product = self.products[self.position]
            self.bar.update(1)
        else:
            product = self.operator.matvec(q[:, 0].to(self.operator.dtype))
            self.products.append(product)
            self.keys.append(key)
            self.unsaved += 1
            self.bar.update(1)
            if self.unsaved >= self.save_every:
                self.save()
        self.position += 1
        return product.to(torch.float64).unsqueeze(1)

    def expect(self, total: int) -> None:
        """Show ``total`` products (replayed ones included) as the progress bar's end."""
        self.bar.total = total
        self.bar.refresh()

    def close(self) -> None:
        self.save()
        self.bar.close()
