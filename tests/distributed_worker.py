"""One rank of tests/test_distributed.py's runs: python distributed_worker.py OUT MODE."""
import json
import os
import sys
from pathlib import Path

import torch
from torch import nn

import neff
from neff import distributed


def main(out: Path, mode: str) -> None:
    distributed.init(timeout_s=20)
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 6), nn.Tanh(), nn.Linear(6, 3)).double()
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(47, 4, generator=gen, dtype=torch.float64)
    y = torch.randint(0, 3, (47,), generator=gen)
    data = [(x[i:i + 10], y[i:i + 10]) for i in range(0, 47, 10)]  # 10, 10, 10, 10, 7: rank 1 gets 2 of 5
    v = torch.randn(sum(p.numel() for p in model.parameters()), 4, generator=gen, dtype=torch.float64)
    result = {"rank": distributed.rank(), "batches": len(list(distributed.shard(data)))}
    if mode == "die":
        op = neff.HessianOperator(model, nn.CrossEntropyLoss(), distributed.shard(data), distributed=True)
        op.matmat(v)
        if distributed.rank() == 1:
            os._exit(3)
        op.matmat(v)  # rank 1 is gone: this must fail, not hang
        raise SystemExit("rank 0 finished a product without rank 1")
    for kind in (neff.HessianOperator, neff.GGNOperator):
        shared = kind(model, nn.CrossEntropyLoss(), distributed.shard(data), distributed=True, cache_gb=0)
        single = kind(model, nn.CrossEntropyLoss(), data, cache_gb=0)
        eigen = neff.top_eigenpairs(shared, 5, tol=1e-9, checkpoint=out / f"{kind.kind}.pt")
        result[kind.kind] = {
            "product": shared.matmat(v).tolist(), "single_product": single.matmat(v).tolist(),
            "dense": shared.dense().tolist(), "single_dense": single.dense().tolist(),
            "eigenvalues": eigen.eigenvalues.tolist(),
            "single_eigenvalues": neff.top_eigenpairs(single, 5, tol=1e-9).eigenvalues.tolist(),
            "examples": shared.num_examples, "fingerprint": shared.fingerprint(),
            "single_fingerprint": single.fingerprint(),
            "value": shared.value(), "single_value": single.value()}
    (out / f"rank{distributed.rank()}.json").write_text(json.dumps(result))


if __name__ == "__main__":
    main(Path(sys.argv[1]), sys.argv[2])
