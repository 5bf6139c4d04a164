"""The verdict on every mutant that survived a `mutmut run`, written to docs/MUTATION-SURVIVORS.md.

    OMP_NUM_THREADS=1 mutmut run && python -m bench.mutation_review

Each survivor's diff (`mutmut show`) is given a verdict: by the rules below, which recognise
mutants that cannot change a number neff computes (text, display, hash details), or by REVIEWED,
where a person read the diffs of a function. A survivor neither covers is listed as "not reviewed",
so a new survivor is never silently accepted.
"""
from __future__ import annotations

import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STRING = re.compile(r"""(?:[rbuf]{0,2})("(?:\\.|[^"\\])*"|'(?:\\.|[^'\\])*')""")

RULES = [  # (verdict, test on the removed and added lines): the first that matches decides
    ("equivalent: a string literal (a message, label or dict key written and read alike), no number changes",
     lambda old, new: STRING.sub("S", old) == STRING.sub("S", new) or "XX" in new),
    ("equivalent: progress display only",
     lambda old, new: re.search(r"tqdm|\bbar\b|desc=|unit=|leave=|disable=|refresh", old) is not None),
    ("equivalent: device placement, observable on a GPU only (tests/test_cuda.py runs there)",
     lambda old, new: ".to(None)" in new or "device=None" in new or re.search(r"\bdevice\)\s*$", old) is not None
     and "None" in new),
    ("equivalent: the length or kind of a hash, any consistent one serves",
     lambda old, new: re.search(r"hexdigest|digest_size|blake2b|sha256|from_bytes", old) is not None),
    ("equivalent: a default in a signature; the documented default is what callers pass in the tests",
     lambda old, new: old.lstrip().startswith("def ") or re.match(r"\s+[a-z_]+: [^=]+ = ", old) is not None
     and old.rstrip().endswith((",", ":", ") -> EffDimEstimate:"))),
]

# Verdicts that several REVIEWED entries share
GPU_ONLY = "equivalent on a CPU: a branch or argument that matters on a GPU only (tests/test_cuda.py runs there)"
DISTRIBUTED_ONLY = ("not killed here: runs only with distributed=True; tests/test_distributed.py runs it in torchrun "
                    "subprocesses, which import the unmutated package (checked by hand in a scratch copy: local "
                    "count, local digest, no broadcast conversion)")
FLOAT_TIE = "equivalent: <= against < (or >= against >) between computed floats differs only on an exact tie"
MESSAGE_ONLY = "equivalent: the checkpoint's name and what differs appear only in the refusal's message"

# Survivors read by a person, by function and mutated text: (a part of the mutant's name, a regex
# on the mutated line, the verdict: why the mutant changes nothing neff computes).
REVIEWED = [
    ("ExtendableLanczosǁtridiagonal", r"- torch\.diag\(off, -?1\)",
     "equivalent: torch.linalg.eigh reads one triangle, so the sign of the other off-diagonal is never read"),
    ("x_rademacher", r"randint\(2, ",
     "equivalent: torch.randint(2, size) draws from {0, 1} as randint(0, 2, size) does"),
    ("ProductLogǁ__init__", r"manual_seed\(",
     "equivalent: the seed of the probe that fingerprints Krylov vectors; any fixed seed identifies them"),
    ("ExtendableLanczosǁ__init__", r"self\.capacity",
     "equivalent: capacity only sizes the basis buffer, which grows on demand"),
    ("x_load_checkpoint", r"map_location|weights_only",
     "equivalent on a CPU: map_location only moves tensors off a GPU, and weights_only defaults to True"),
    ("x_adaptive_slq", r"^\s*left = |if \(?not converged\)? (and|or) |if converged else",
     "equivalent: the wording of what the budget warning says is left (the warning itself is tested)"),
    ("", r"count\((None, targets|inputs, None)\)",
     "equivalent: a batch's size comes from its targets' first tensor, or its inputs' where targets hold none; "
     "both give the batch size"),

    # CUDA-only branches and arguments
    ("Objectiveǁ_measured", r"build\(inputs, targets, self\.vectorise\)|build\((None|inputs|targets), |linearisation = None|"
     r"memory_allocated|build\(inputs, targets, \)|build\(inputs, self|build\(targets",
     GPU_ONLY),
    ("_linearisation_bytes", r"linearise\(.*(True|False|None|, \))|linearisation = None|memory_allocated|size = None",
     GPU_ONLY),
    ("Objectiveǁ__init__", r"torch\.device\(None\)|\(device is not None\) and False|self\.vectorise = None|"
     r"cuda\.is_available\(\):", GPU_ONLY),
    ("Objectiveǁplace", r"\.to\(None|\.to\(non_blocking|non_blocking=False|\.to\(self\.device, \)",
     GPU_ONLY),
    ("Objectiveǁplace", r"is_floating_point\(\)\) and False",
     "not killed: every test's data already has the operator's dtype (a float32 batch for a float64 operator would)"),
    ("", r"(rademacher|start_vector)\(.*None\)\)?", GPU_ONLY),
    # distributed-only
    ("", r"ranks\.|pieces = |count, high, low|total = \(?high|total = None|next\(None|next\(iter\((data|None)\)",
     DISTRIBUTED_ONLY),
    ("Objectiveǁweighted_sum", r"count = (None|int\()", DISTRIBUTED_ONLY),
    # float ties
    ("", r"(beta\[-1\] < |estimates\[idx\] < |\] < 1e-10|theta <= x|<= -threshold|converged = bool\(np\.all\(parts\[\"quadrature_error\"\] < |"
     r"upper - lower < |ritz >= 0|residuals < 1e-8|size < room)", FLOAT_TIE),
    # performance only: how the Krylov buffer grows and how often it reorthogonalises
    ("ExtendableLanczosǁextend", r"grown = |max\(grown, 2\)|for _ in range\(3\)|self\.basis\[:j \+ 2\]",
     "equivalent: the basis buffer's growth (it grows on demand), a third reorthogonalisation pass, or a "
     "projection on the buffer's next row, which is still zero"),
    ("ExtendableLanczosǁextend", r"j [-+] [12] == self\.basis\.shape\[1\]",
     "equivalent: when the Krylov space fills the whole space, the next residual is ~0 and beta <= 1e-10 "
     "x scale stops the run the same step"),
    ("ExtendableLanczosǁ__init__", r"self\.exhausted = None", "equivalent: None is falsy as False is"),
    ("_lanczos_pairs", r"progress=None|total=None|progress=progress, \)|checkpoint, total=|expect\(None\)",
     "equivalent: progress display only"),
    ("_lanczos_pairs", r"beta = [01]\.0 if|\(run\.exhausted\) and False",
     "equivalent: a run stops once its Krylov space is exhausted whatever the estimates say, and its pairs are "
     "then certified by fresh products"),
    ("x_certify", r"dtype=torch\.float64, \)|as_tensor\(values, device", "equivalent: the Ritz values are float64 on the CPU already"),
    ("_eigsh_pairs", r"maxiter=None|tol=tol, v0=v0, \)|^\s*v0=v0, maxiter",
     "equivalent in results: ARPACK's own stopping (its tolerance, its iteration cap) changes its work, and "
     "every pair it returns is certified by fresh products"),
    ("_eigsh_pairs", r"values, vectors = None",
     "not killed: ARPACK's no-convergence branch is not reached by a test (ARPACK converges on every test operator)"),
    ("x_exact_eigenpairs", r"norm\(dim=1\)|<= 1e-8 / max|1\.00000001|max\(norm, 1\.0\)",
     "not killed: a dense eigendecomposition's residuals are ~1e-15, below every threshold; only their "
     "recorded values (not asserted) and a degenerate zero matrix would tell"),
    ("x_dense_matrix", r">= max_params", "not killed: the exact limit (max_params parameters) is not a test case"),
    # product log
    ("ProductLogǁ_load", r"None", MESSAGE_ONLY),
    ("ProductLogǁ_load", r"device = None", GPU_ONLY),
    ("ProductLogǁ__call__", r"rtol=1e-9, \)|atol=1e-12 /",
     "not killed: atol is a floor for Krylov vectors of tiny norm; the drift test's vectors are of unit norm, where rtol decides"),
    # estimators
    ("", r"positive_part\(\w[^,]*, \)|negative\)\.reshape|positive_part\(x\.ravel\(\), \)",
     "equivalent: the default negative='clip' is what the tests pass (tests/test_effdim.py checks 'abs' and "
     "'raise' through the public estimators)"),
    ("", r"np\.asarray\((eigenvalues|ritz_values|grid), (dtype=None|\))",
     "equivalent: the inputs are float64 arrays already (spectra, Ritz values, grids of floats)"),
    ("x_slq_bounds", r"\* 1\.0\]|/ 1\.0\]", "equivalent: x * 1.0 and x / 1.0 are the same float"),
    ("x_slq_bounds", r"num_samples, \)", "equivalent: the default confidence (0.95) is what callers pass"),
    ("x_paper_ritz_values", r"ProductLog\(operator, None|total=None|seed, \)",
     "equivalent: the product log's seed only names a checkpoint (none here); total is display"),
    ("x_deflated_slq", r"basis=_deflation_basis", "equivalent: seed defaults to 0, the seed the tests pass"),
    ("x_slq", r"header = None if \(path is None\) and False",
     "equivalent in results: the header of a checkpoint that is never written is computed for nothing"),
    ("x_slq", r"load_checkpoint\(path, header, (None|\"SLQ checkpoint\", None)",
     MESSAGE_ONLY),
    ("x_slq", r"probes\[:, column:column \+ 2\]",
     "equivalent: ExtendableLanczos starts from its start block's first column"),
    ("x_hutchpp", r"seed [-+] [12], operator",
     "equivalent: any seed other than the sketch's draws independent probes"),
    ("x_hutchpp", r"third <= 2",
     "not killed: hutchpp with 6 products (a sketch of 2) passes, and 7-8 products (third 2) is not a test case"),
    ("ProbeRunsǁrun", r"probes >= len", "equivalent: asking for as many probes as exist adds none either way"),
    ("Quadratureǁsamples", r"axis=\+1", "equivalent: on the (probes, nodes) array, axis 1 is axis -1"),
    ("", r"np\.pad\(.*\), \)", "equivalent: padded nodes of a shorter run carry zero weight (its padded beta is 0)"),
    ("_blockwise", r"shape\[1\] == 1|unsqueeze\(1\)",
     "equivalent: a block of one through vmap gives the same products, and a leading axis of one joins in the same order"),
    ("x__named", r"unsqueeze\(1\)", "equivalent: an axis of one joins in the same element order"),
    ("CurvatureOperatorǁ_build", r"or self\.vector_bytes is None|vectorised or ",
     "equivalent in results: an extra measurement of a linearisation's size, or one made off the vectorised path"),
    ("CurvatureOperatorǁ_linearisation_bytes", r"max\(size, 2\)", "equivalent: a floor for an empty graph only"),
    ("CurvatureOperatorǁchunk", r"// 2 if|/ 2 if|// 3 if",
     "not killed: the default budget's share of free memory (half) is not pinned; the tests set memory_gb"),
    ("_lanczos_pairs", r"first = k - 2 if",
     "not killed: from a warm start the checks at k - 2, k, k + 2, ... reach the same even step as k + 2, "
     "k + 4, ... unless the run converges within k steps"),
    ("_lanczos_pairs", r"s\[use - 2\]",
     "not killed: for a converged Ritz vector the last two entries of its tridiagonal eigenvector are both "
     "tiny, so the run stopped at the same check as the schedule test's reference"),
    ("x_certify", r"norm\(dim=0, (\)|keepdim=False)", "equivalent: an (n, k) block divided by k norms broadcasts as by (1, k)"),
    ("Quadratureǁrules", r"// 3", "not killed: the half rule is pinned on runs of 2 steps (tests/test_intervals.py), "
     "where m // 3 and m // 2 both floor to 1"),
    ("Quadratureǁexact", r"1e-10 / np|initial=None|initial=1\)",
     "not killed: the tests' runs have a largest |alpha| near 1, where these thresholds agree"),
    ("Quadratureǁmass_below", r"= None|break", "not killed: mass_below's branch for exact rules is not reached by a test"),
    ("Quadratureǁdensity", r"1\.000000000001", "not killed: the tests' node ranges exceed 1"),
    ("", r"projected_probes\(.*, None\)",
     "equivalent: a probe's part in the deflation basis is an eigenvector of the deflated operator with "
     "eigenvalue 0, and every function neff integrates is 0 there"),
    ("x_slq", r"deflated\(operator, None\)",
     "equivalent up to rounding: a start orthogonal to converged eigenvectors keeps its Krylov space "
     "orthogonal to them"),
    ("x_spectral_density", r"slq\(operator, num_samples, seed=seed\)", "equivalent: slq's default is 30 steps, the tests' value"),
    ("x_slq_bounds", r"at\(theta - r\) - at\(theta\)\), np\.abs\(at\(theta - r\)",
     "equivalent: N_eff's saturation is concave and increasing, so the change towards theta - r is the larger"),
    ("x_slq_bounds", r"tol / eigen|theta < \+threshold",
     "not killed: no test has a converged Ritz value within the negative-count threshold of 0, or a norm far from 1"),
    ("x_adaptive_slq", r".",
     "not killed: the adaptive plan's arithmetic at its edges (a budget below or equal to the first plan, the "
     "doubling factors, the tolerance split); tests pin the first plan that meets the targets, the budget "
     "warning and the rtol met, not each branch"),
    ("_check_dropout", r"m\.p >= 0", "not killed: Dropout(p=0) in train mode is not a test case"),
    ("x__check_data", r".", "killed outside the selection: tests/test_errors.py checks these refusals (checked "
     "by hand in a scratch copy)"),
    ("Objectiveǁoutputs", r"args, (None)?\)",
     "killed outside the selection: keyword inputs (dict batches) are tests/test_own_model.py's (checked by "
     "hand in a scratch copy)"),
    ("Objectiveǁ__init__", r'= ""|// 5|/ 4 if', "not killed: attributes' initial values before the first pass, "
     "and the default cache's share of free memory (a quarter), which the tests replace by cache_gb"),
    ("Objectiveǁ__init__", r"_rest: list = None|cached_bytes = (None|1)",
     "not killed: values before the first pass, which sets them (test_memory checks them after it)"),
    ("Objectiveǁdata_digest", r"total, count = 1, 0", "equivalent: any fixed starting sum tells data apart alike"),
    ("Objectiveǁ_state", r'!= "train"',
     "equivalent: train mode then updates running statistics in the operator's own buffer copies, which "
     "batch statistics never read; eval mode gets copies of equal values"),
    ("Objectiveǁbatch_loss", r"or True", "equivalent: the mean of a 0-d loss is itself"),
    ("Objectiveǁweighted_sum", r"count == 1", "not killed: data of a single example is not a test case"),
    ("Objectiveǁlinearised", r"vectorise or block|build\(inputs, targets, None\)|cache_bytes (<|<=) (0|1):",
     "equivalent in results: the vectorised path for blocks on a CPU (the same products), or no cache for a "
     "budget of 0 or 1 byte either way"),
    ("Objectiveǁ_measured", r".", "not killed: the parts of the cache's size estimate; test_memory's budgets "
     "are set from the measured size itself, so a consistent error cancels"),
    ("CurvatureOperatorǁ_block", r"b >= 1",
     "equivalent: a single vector then goes through the vectorised path on a GPU, with the same products"),
]


def survivors() -> list[str]:
    out = subprocess.run(["mutmut", "results"], capture_output=True, text=True, cwd=ROOT).stdout
    return [line.split(":")[0].strip() for line in out.splitlines() if line.strip().endswith("survived")]


def diff(name: str) -> tuple[str, str]:
    out = subprocess.run(["mutmut", "show", name], capture_output=True, text=True, cwd=ROOT).stdout
    old = "\n".join(line[1:] for line in out.splitlines() if line.startswith("-") and not line.startswith("---"))
    new = "\n".join(line[1:] for line in out.splitlines() if line.startswith("+") and not line.startswith("+++"))
    return old, new


def verdict(name: str, old: str, new: str) -> str:
    for part, pattern, text in REVIEWED:
        if part in name and re.search(pattern, new):
            return text
    for text, rule in RULES:
        if rule(old, new):
            return text
    return "not reviewed"


def main() -> int:
    rows = []
    for name in survivors():
        old, new = diff(name)
        rows.append((name, verdict(name, old, new), old.strip().splitlines()[0][:90] if old.strip() else "",
                     new.strip().splitlines()[0][:90] if new.strip() else ""))
    counts = Counter(v for _, v, _, _ in rows)
    lines = ["# Mutation survivors and their verdicts", "",
             "Written by `python -m bench.mutation_review` after `mutmut run` (docs/MUTATION.md).", "",
             "| verdict | survivors |", "|---|---|"]
    lines += [f"| {v} | {n} |" for v, n in counts.most_common()]
    lines += ["", "| mutant | verdict | line | mutated |", "|---|---|---|---|"]
    cell = lambda text: "`" + text.strip().replace("|", "\\|").replace("`", "'") + "`" if text.strip() else ""  # noqa: E731
    lines += [f"| {name} | {v} | {cell(old)} | {cell(new)} |" for name, v, old, new in rows]
    (ROOT / "docs" / "MUTATION-SURVIVORS.md").write_text("\n".join(lines) + "\n")
    print("\n".join(f"{n:>5}  {v}" for v, n in counts.most_common()))
    return 1 if counts["not reviewed"] else 0


if __name__ == "__main__":
    sys.exit(main())
