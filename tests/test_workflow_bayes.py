"""The Figure 4 and Figure 8 rules: plans for both configs and a tiny real run."""
import json

import pandas as pd

from test_workflow import planned

BAYES_RULES = ("blr", "bnn", "bnn_table", "random_features", "figure_contraction", "figure_random_features")


def test_plans_include_the_bayes_rules(default_plan, paper_plan):
    assert planned(default_plan, *BAYES_RULES) == dict.fromkeys(BAYES_RULES, 1) | {"bnn": 3}
    assert planned(paper_plan, *BAYES_RULES) == dict.fromkeys(BAYES_RULES, 1) | {"bnn": 105}  # 21 sizes x 5 trials


def test_tiny_real_run_of_figures_4_and_8(tiny_run):
    targets = [f"results/figures/fig{n}.{ext}" for n in (4, 8) for ext in ("pdf", "png")]
    assert all((tiny_run / target).stat().st_size > 1000 for target in targets)
    blr = pd.read_csv(tiny_run / "results/tables/fig4_blr.csv")
    assert list(blr["n"]) == list(range(41)) and blr["param_neff"].iloc[0] == 20 * 3 / 8
    bnn = pd.read_csv(tiny_run / "results/tables/fig4_bnn.csv")
    # inputs (1, x, x^2), two hidden layers of 3, no biases, and the noise precision
    assert len(bnn) == 4 and (bnn["num_params"] == 3 * 3 + 3 * 3 + 3 + 1).all()
    record = json.loads((tiny_run / "results/bayes/bnn/size~12/trial~1.json").read_text())
    assert record["size"] == 12 and record["bnn"]["samples"] == 10 and "git_commit" in record
    features = pd.read_csv(tiny_run / "results/tables/fig8.csv")
    assert sorted(features["d"].unique()) == [10, 20, 30, 40, 50] and len(features) == 10
    assert features["train_error"].between(0, 1).all() and (features.loc[features["d"] >= 30, "train_error"] < 1e-9).all()
    grid = pd.read_csv(tiny_run / "results/tables/fig8_grid.csv")
    assert sorted(grid["d"].unique()) == sorted(grid["n"].unique()) == [10, 30] and len(grid) == 4
