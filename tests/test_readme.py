"""The README's own-model example runs as written."""
import re
from pathlib import Path

README = Path(__file__).resolve().parents[1] / "README.md"


def test_own_model_example_runs(capsys):
    text = README.read_text()
    section = text.split("## Effective dimensionality of your own model", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, str(README), "exec"), {})
    printed = capsys.readouterr().out
    converged = re.search(r"(\d+)/(\d+) largest eigenpairs converged", printed)
    assert converged and converged.group(1) == converged.group(2) != "0" and "N_eff by slq" in printed


def test_dict_batch_example_runs(capsys):
    """The Hugging Face-style example: one estimate per parameter group, each with an interval."""
    section = README.read_text().split("### Any batch, any output, one result per layer", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    exec(compile(code, str(README), "exec"), {})
    printed = capsys.readouterr().out
    assert re.search(r"^attention: N_eff by slq \(\d+ products, 80 parameters", printed, re.M)
    assert re.search(r"^head: N_eff by slq \(\d+ products, 10 parameters", printed, re.M)


def test_measures_example_runs_on_the_first_ones_model(capsys):
    text = README.read_text().split("## Effective dimensionality of your own model", 1)[1]
    first = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    measures = re.search(r"```python\n(.*?)```", text.split("### Other generalization measures", 1)[1], re.S).group(1)
    namespace = {}
    exec(compile(first, str(README), "exec"), namespace)
    capsys.readouterr()
    exec(compile(measures, str(README), "exec"), namespace)
    printed = capsys.readouterr().out
    assert "converged True" in printed and "'pacbayes_mag_flatness'" in printed


def test_quick_start_has_two_commands():
    quick = README.read_text().split("## Quick start", 1)[1].split("\n## ", 1)[0]
    commands = re.findall(r"```bash\n(.*?)```", quick, re.S)
    assert len(commands) == 2 and all(c.strip().count("\n") == 0 for c in commands)
    ci = (README.parent / ".ci" / "run").read_text()
    assert "pip install -e '.[test]' && python -m pytest -q" in commands[1] and commands[1].split("&& ", 2)[2].strip() in ci
