"""Snakemake hygiene: every rule has log, benchmark and conda; `snakemake --lint` finds nothing;
snakefmt (pinned in the test extra) would change nothing. The report, which needs a finished run,
is checked after the tiny real run in test_workflow.py."""
import re
import subprocess
import sys
from pathlib import Path

from test_workflow import ROOT, snakemake

WORKFLOW_FILES = [ROOT / "Snakefile", *sorted((ROOT / "workflow" / "rules").glob("*.smk"))]


def test_every_rule_has_log_benchmark_and_conda():
    missing = []
    for path in WORKFLOW_FILES:
        parts = re.split(r"^(?:rule|checkpoint) (\w+):", path.read_text(), flags=re.M)
        for name, body in zip(parts[1::2], parts[2::2]):
            absent = [d for d in ("log", "benchmark", "conda") if not re.search(rf"^\s+{d}:", body, re.M)]
            if "output:" in body and absent:  # rules without outputs (all) only gather targets
                missing.append(f"{path.name}: rule {name} lacks {', '.join(absent)}")
    assert not missing, "\n".join(missing)


def test_lint_finds_nothing(tmp_path):
    done = snakemake(tmp_path, "--lint")
    assert done.returncode == 0 and "Congratulations" in done.stdout + done.stderr, done.stdout + done.stderr


def test_snakefmt_would_change_nothing():
    snakefmt = str(Path(sys.executable).parent / "snakefmt")
    done = subprocess.run([snakefmt, "--check", "--diff", *map(str, WORKFLOW_FILES)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
