"""Live progress of a search: the tqdm bar in a terminal, plain lines in a pipe, nothing extra with --quiet,
progress within seconds of the study opening, per-worker lines, and the Python API's bar."""

from __future__ import annotations

import fcntl
import io
import os
import pty
import re
import select
import struct
import subprocess
import sys
import termios
import time
from pathlib import Path

import pytest
from conftest import REPO

from autodnn.progress import INTERVAL_ENV, SearchProgress, describe_config, in_notebook, progress_mode

SEARCH = ("search", "--dataset", "digits", "--space", "quick", "--n-trials", "2", "--max-epochs", "3",
          "--no-baselines", "--no-final", "--study", "p", "--timeout", "none")
#: A carriage return that is not a line ending: tqdm redrawing its bar in place.
IN_PLACE = re.compile(r"\r(?!\n)")
ANSI = re.compile(r"\x1b\[")
FINISHED = re.compile(r"^Trial\s+(\S+)\s+(complete|pruned)\s", re.MULTILINE)
STARTED = re.compile(r"^Trial\s+(\S+)\s+started\s+\d+ x \d+ \w+", re.MULTILINE)


def environment(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != INTERVAL_ENV}
    return {**env, "PYTHONPATH": str(REPO), **extra}


def command(tmp_path: Path, *args: str) -> list[str]:
    return [sys.executable, "-m", "autodnn", *args, "--storage", f"sqlite:///{tmp_path / 'p.db'}"]


def run_in_terminal(argv: list[str], cwd: Path, timeout: float = 240) -> str:
    """Runs a command with stdout and stderr on a pseudo-terminal 120 columns wide; returns all it wrote.

    The terminal's own newline translation is off, so every carriage return in the output is the program's.
    """
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 120, 0, 0))
    attrs = termios.tcgetattr(slave)
    attrs[1] &= ~termios.ONLCR
    termios.tcsetattr(slave, termios.TCSANOW, attrs)
    process = subprocess.Popen(argv, cwd=cwd, env=environment(), stdin=slave, stdout=slave, stderr=slave,
                               close_fds=True)
    os.close(slave)
    chunks = []
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 1.0)
            if not ready:
                if process.poll() is not None:
                    break
                continue
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the program closed the terminal
                break
            if not data:
                break
            chunks.append(data)
        else:
            pytest.fail("the search did not end in time")
        assert process.wait(timeout=30) == 0, b"".join(chunks).decode(errors="replace")[-3000:]
    finally:
        process.kill()
        os.close(master)
    return b"".join(chunks).decode(errors="replace")


def test_a_terminal_gets_one_bar_updated_in_place_with_the_trial_lines_above_it(tmp_path: Path) -> None:
    out = run_in_terminal(command(tmp_path, *SEARCH), tmp_path)
    assert IN_PLACE.search(out), out
    frames = [frame for frame in re.split(r"[\r\n]", out) if "trials [" in frame]
    assert frames, out
    assert any(re.search(r"best \d\.\d{4}", frame) for frame in frames)
    assert any(re.search(r"trial +\d+ epoch [123]/3 val \d\.\d{4}", frame) for frame in frames), frames
    assert any(re.search(r"100%\|.*\| 2/2 trials", frame) for frame in frames), frames[-3:]
    lines = out.replace("\r", "\n")
    assert {m.group(1) for m in FINISHED.finditer(lines)} == {"0", "1"}
    assert {m.group(1) for m in STARTED.finditer(lines)} == {"0", "1"}
    assert "Best trial" in out


def test_a_pipe_gets_plain_complete_lines(tmp_path: Path) -> None:
    done = subprocess.run(command(tmp_path, *SEARCH), cwd=tmp_path, capture_output=True, text=True, timeout=240,
                          env=environment(**{INTERVAL_ENV: "0"}), check=False)
    assert done.returncode == 0, done.stderr
    for text in (done.stdout, done.stderr):
        assert "\r" not in text and not ANSI.search(text)
    assert done.stdout.endswith("\n")
    lines = done.stdout.splitlines()
    assert lines[0].startswith("Study 'p'")
    order = [(m.group(1), "started") for m in STARTED.finditer(done.stdout)]
    assert order == [("0", "started"), ("1", "started")]
    assert [m.group(1) for m in FINISHED.finditer(done.stdout)] == ["0", "1"]
    # Interval 0: one plain line per epoch, between the trial's start and end.
    epochs = [line for line in lines if re.match(r"Trial\s+0\s+epoch\s+\d/3\s+val_accuracy \d\.\d{4}\s+\[", line)]
    assert 1 <= len(epochs) <= 3, lines
    assert "0 of 2 searched" in epochs[0] and "elapsed" in epochs[0]
    start = next(i for i, line in enumerate(lines) if STARTED.match(line))
    end = next(i for i, line in enumerate(lines) if FINISHED.match(line))
    assert start < lines.index(epochs[0]) < end


def test_quiet_prints_no_bar_and_no_progress_lines_even_on_a_terminal(tmp_path: Path) -> None:
    out = run_in_terminal(command(tmp_path, *SEARCH, "--quiet"), tmp_path)
    assert not IN_PLACE.search(out) and "trials [" not in out
    assert not STARTED.search(out) and not FINISHED.search(out) and " epoch " not in out
    assert "Study 'p'" in out and "Best trial" in out


def test_the_first_progress_comes_right_after_the_study_opens_not_after_a_baseline_trained(tmp_path: Path) -> None:
    space = tmp_path / "small.yaml"
    space.write_text("params:\n  n_hidden: 2\n  n_units: 32\n  learning_rate: {low: 1.0e-3, high: 1.0e-2, log: true}\n"
                     "  patience: 1000\n")
    argv = command(tmp_path, "search", "--dataset", "digits", "--space", str(space), "--n-trials", "1",
                   "--max-epochs", "15", "--no-final", "--study", "p", "--no-warm-start")
    process = subprocess.Popen(argv, cwd=tmp_path, env=environment(**{INTERVAL_ENV: "0"}), stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True, bufsize=1)
    arrivals: list[tuple[float, str]] = []
    try:
        for line in process.stdout:
            arrivals.append((time.monotonic(), line.rstrip("\n")))
            if FINISHED.match(line):
                break
        process.kill()
    finally:
        process.kill()
        process.wait()
    seen = [line for _, line in arrivals]
    study = next(t for t, line in arrivals if line.startswith("Study 'p'"))
    started = next(t for t, line in arrivals if re.match(r"Trial\s+book-2e\s+started\s", line))
    epoch = next(t for t, line in arrivals if re.match(r"Trial\s+book-2e\s+epoch\s", line))
    finished = next((t for t, line in arrivals if FINISHED.match(line)), None)
    assert finished is not None, seen
    assert study <= started <= epoch <= finished, seen
    # The first baseline's line comes as it starts: its wait is a small share of the baseline's training.
    assert started - study < (finished - started) / 2, seen


def test_each_worker_relays_its_own_progress_lines_with_its_prefix(run_cli, workdir: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(INTERVAL_ENV, "0")  # the workers inherit it: a line per epoch
    (workdir / "tiny.yaml").write_text("params:\n  n_hidden: 1\n  n_units: 16\n  batch_size: 64\n"
                                       "  learning_rate: {low: 1.0e-3, high: 1.0e-1, log: true}\n")
    result = run_cli("search", "--dataset", "digits", "--space", "tiny.yaml", "--study", "w", "--n-trials", "3",
                     "--max-epochs", "2", "--no-baselines", "--no-final", "--workers", "2")
    assert result.code == 0, result.err
    assert "\r" not in result.out
    assert re.search(r"^\[w[12]\] Trial\s+\d+\s+started\s+1 x 16", result.out, re.MULTILINE), result.out
    assert re.search(r"^\[w[12]\] Trial\s+\d+\s+epoch\s+[12]/2\s+val_accuracy", result.out, re.MULTILINE)
    assert len(re.findall(r"^\[w[12]\] Trial\s+\d+\s+(complete|pruned)", result.out, re.MULTILINE)) == 3


def test_a_configuration_with_epochs_of_its_own_shows_them_as_its_length(run_cli, workdir: Path,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(INTERVAL_ENV, "0")
    (workdir / "own.yaml").write_text("params:\n  n_hidden: 1\n  n_units: 16\n  batch_size: 64\n  epochs: 2\n"
                                      "  learning_rate: {low: 1.0e-3, high: 1.0e-1, log: true}\n")
    result = run_cli("search", "--dataset", "digits", "--space", "own.yaml", "--study", "own", "--n-trials", "1",
                     "--max-epochs", "5", "--no-baselines", "--no-final")
    assert result.code == 0, result.err
    shown = result.out + result.err
    assert re.findall(r"Trial\s+0\s+epoch\s+(\d+/\d+)", shown) == ["1/2", "2/2"], shown
    assert re.search(r"Trial\s+0\s+complete .* 2 epochs", shown), shown


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_python_api_shows_the_bar_on_stderr_and_nothing_by_default_off_a_terminal(
        sqlite_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    import autodnn

    options = {"dataset": "digits", "space": "quick", "max_epochs": 2, "baselines": False, "study": "api",
               "storage": sqlite_url}
    terminal = _Terminal()
    with monkeypatch.context() as patched:
        patched.setattr(sys, "stderr", terminal)
        autodnn.search(n_trials=1, progress=True, **options)
    shown = terminal.getvalue()
    assert IN_PLACE.search(shown) and "1/1 trials" in shown and "best " in shown
    assert STARTED.search(shown.replace("\r", "\n")) and FINISHED.search(shown.replace("\r", "\n"))
    assert capsys.readouterr().out == ""

    autodnn.search(n_trials=2, progress=True, **options)  # not a terminal: plain lines
    captured = capsys.readouterr()
    assert captured.out == "" and "\r" not in captured.err
    assert "Study 'api'" in captured.err and FINISHED.search(captured.err)

    study = autodnn.search(n_trials=3, **options)  # the default: a bar only where someone watches
    captured = capsys.readouterr()
    assert captured.out == "" and "Trial" not in captured.err
    assert len(study.trials) == 3


def test_plain_epoch_lines_come_at_most_once_an_interval(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = [100.0]
    monkeypatch.setattr("autodnn.progress._display.time.monotonic", lambda: clock[0])
    out = io.StringIO()
    shown = SearchProgress("lines", file=out, interval=30)
    shown.open(target=4)
    shown.trial_started("  0", "2 x 64 relu, adam lr 0.001, batch 64")
    for epoch in range(1, 11):
        clock[0] += 10
        shown.epoch("  0", epoch, 50, 0.5 + epoch / 100)
    shown.trial_finished("Trial   0       complete  val_accuracy 0.6000", 1, 0.6)
    lines = out.getvalue().splitlines()
    assert [line.split()[3] for line in lines if " epoch " in line] == ["3/50", "6/50", "9/50"]
    assert lines[0].startswith("Trial   0       started   2 x 64") and lines[-1].endswith("0.6000")


@pytest.mark.parametrize("mode", ["bar", "lines"])
def test_the_evaluations_plan_shrinks_when_a_baseline_is_chosen_and_the_bar_ends_full(mode: str) -> None:
    from autodnn.progress import EvaluationProgress

    out = _Terminal()
    progress = EvaluationProgress(mode, score="val_accuracy", test="test_accuracy", file=out, interval=0)
    progress.on_plan(4)
    fold = {"name": "book-2e fold 1/2", "kind": "fold"}
    for seed in (0, 1):
        progress.on_run(fold, {"seed": seed, "val_accuracy": 0.9, "epochs": 3, "seconds": 0.1})
    progress.on_plan(3)  # the best's seed is not trained
    progress.on_run({"name": "book-2e", "kind": "baseline"},
                    {"seed": 9, "test_accuracy": 0.8, "epochs": 3, "seconds": 0.1})
    progress.display.close()
    shown = out.getvalue()
    assert progress.display.target == 3 and progress.done == 3
    assert "fold 1/2 seed 0: val_accuracy 0.9000" in shown and "book-2e    seed 9: test_accuracy 0.8000" in shown
    if mode == "bar":
        assert re.search(r"100%\|.*\| 3/3 runs", shown), shown


def test_progress_modes_and_the_configuration_phrase() -> None:
    assert progress_mode(_Terminal(), True) == progress_mode(_Terminal(), None) == "bar"
    assert progress_mode(io.StringIO(), True) == "lines" and progress_mode(io.StringIO(), None) == "off"
    assert progress_mode(_Terminal(), False) == "off"
    assert not in_notebook()
    phrase = describe_config({"n_hidden": 20, "n_units": 100, "activation": "elu", "normalization": "batch_norm_after",
                              "dropout": 0.2, "optimizer": "nadam", "learning_rate": 0.00123, "schedule": "1cycle",
                              "batch_size": 32})
    assert phrase == "20 x 100 elu, batch norm after, dropout 0.2, nadam lr 0.0012 1cycle, batch 32"
    own = describe_config({"n_hidden": 3, "n_units": 1024, "activation": "relu", "optimizer": "adamw",
                           "learning_rate": 1e-3, "schedule": "cosine", "batch_size": 256, "epochs": 20})
    assert own == "3 x 1024 relu, adamw lr 0.001 cosine, batch 256, 20 epochs"


def test_the_searched_count_leaves_out_trials_that_never_started_as_n_trials_does() -> None:
    import optuna
    from optuna.distributions import FloatDistribution
    from optuna.trial import TrialState, create_trial

    from autodnn.progress._lines import tally
    from autodnn.study.records import searched_count
    from autodnn.study.trial_record import NOT_STARTED

    study = optuna.create_study(direction="maximize")
    dist = {"x": FloatDistribution(0, 1)}
    for value in (0.5, 0.7):
        study.add_trial(create_trial(params={"x": value}, distributions=dist, value=value))
    study.add_trial(create_trial(params={"x": 0.1}, distributions=dist, state=TrialState.PRUNED,
                                 user_attrs={NOT_STARTED: True, "reason": "not started: no time left"}))
    study.add_trial(create_trial(params={"x": 0.9}, distributions=dist, value=0.9, user_attrs={"baseline": "book-2e"}))
    assert tally(study) == (2, 0.7) and searched_count(study) == 2


FINAL = tuple(a for a in SEARCH if a != "--no-final") + ("--seeds", "1")


def test_the_final_evaluation_shows_a_bar_of_its_runs_with_the_running_epoch_on_a_terminal(tmp_path: Path) -> None:
    out = run_in_terminal(command(tmp_path, *FINAL), tmp_path)
    after = out[out.index("Final evaluation"):]
    frames = [frame for frame in re.split(r"[\r\n]", after) if "runs [" in frame]
    # Two finalists cross-validated (digits' 144 validation rows are few), the best and the trees, one seed each.
    assert any(re.search(r"run trial \d+ fold 1/5 seed 10000 epoch [123]/3 val \d\.\d{4}", f) for f in frames), frames
    assert any(re.search(r"run best seed 10000 epoch [123]/3 val \d\.\d{4}", f) for f in frames), frames
    assert any(re.search(r"100%\|.*\| 12/12 runs", frame) for frame in frames), frames[-3:]
    assert re.search(r"^  \S+ +seed 10000: test_accuracy \d\.\d{4} \(\d+ boosting rounds", after.replace("\r", "\n"),
                     re.MULTILINE), "the trees' run has its line above the bar"


def test_the_final_evaluation_writes_plain_epoch_lines_to_a_pipe_with_the_time_left(tmp_path: Path) -> None:
    argv = command(tmp_path, *(a if a != "none" else "600" for a in FINAL))
    done = subprocess.run(argv, cwd=tmp_path, capture_output=True, text=True, timeout=240,
                          env=environment(**{INTERVAL_ENV: "0"}), check=False)
    assert done.returncode == 0, done.stderr
    assert "\r" not in done.stdout and not ANSI.search(done.stdout)
    after = done.stdout[done.stdout.index("Final evaluation"):].splitlines()
    epochs = [line for line in after if re.match(r"Run trial \d+ fold 1/5 seed 10000\s+epoch\s+\d/3\s+val_accuracy \d\.\d{4}", line)]
    assert epochs, after
    assert re.search(r"\[0 of 12 done, .* elapsed, .* left of the time budget\]", epochs[0]), epochs[0]
    assert any("boosting rounds" in line for line in after)
