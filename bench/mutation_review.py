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
