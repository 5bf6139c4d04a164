"""The benchmark harness runs end to end on a tiny workload with every peer (the test extra
installs them), so it cannot rot, and each peer's product is an independent reference for
neff's. The full benchmark is `python -m bench.run`."""
import numpy as np

from bench.run import main


def test_benchmark_smoke(capsys):
    results = main(["--parts", "p1", "p2", "--workloads", "tiny", "--p2-workloads", "tiny", "--reps", "1"])
    peers = {"pyhessian", "curvlinops", "eigenthings"}
    assert peers <= {row["tool"] for row in results["p1"]} and peers <= {row["tool"] for row in results["p2"]}
    neff_row = next(row for row in results["p1"] if row["tool"] == "neff")
    assert neff_row["x_neff"] == 1.0 and neff_row["hvp_s"] > 0
    for row in results["p1"]:  # every tool computes the same full-dataset product
        assert row["rel_diff_vs_neff"] < 1e-5, row
    lanczos = next(row for row in results["p2"] if row["tool"] == "neff")
    assert lanczos["certified"] == 20 and lanczos["hvps"] > 20
    out = capsys.readouterr().out
    assert "## P1" in out and "## P2" in out and np.isfinite(lanczos["lambda_1"])
