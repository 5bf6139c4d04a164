"""Job logs and atomic files."""
import warnings

import pytest

from neff.files import atomic_path, log_to


def test_log_holds_messages_warnings_and_the_traceback_of_a_failure(tmp_path):
    log = tmp_path / "logs" / "job.log"
    with pytest.raises(ZeroDivisionError):
        with log_to(log):
            print("step 1 done")
            warnings.warn("a warning for the log")
            1 / 0
    text = log.read_text()
    assert text.startswith("# started") and "step 1 done" in text and "a warning for the log" in text
    assert "Traceback" in text and "ZeroDivisionError" in text and "# failed after" in text


def test_log_of_a_finished_block_and_appending(tmp_path, capsys):
    log = tmp_path / "job.log"
    with log_to(log):
        print("first")
    with log_to(log, mode="a"):
        print("second")
    print("to the terminal again")
    text = log.read_text()
    assert text.count("# finished in") == 2 and text.index("first") < text.index("second")
    assert "to the terminal again" in capsys.readouterr().out


def test_atomic_path_leaves_nothing_when_the_block_fails(tmp_path):
    target = tmp_path / "out.txt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError
    assert list(tmp_path.iterdir()) == []
