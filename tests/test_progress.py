"""Long work reports its progress: log lines with an ETA in a job's log, a bar on a terminal."""

import logging

import pytest

from w2vlens.progress import Progress, duration, progress_iter


def test_a_log_shows_every_tenth_with_the_time_left(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="w2vlens"), Progress(1000, "kNN graph", "rows", quiet_seconds=0,
                                                                    bar=False) as progress:
        for _ in range(100):
            progress.update(10)
    lines = [record.getMessage() for record in caplog.records]
    assert len(lines) == 10  # 10%, 20%, ..., 90%, then done
    assert lines[0].startswith("kNN graph: 10% (100 of 1,000 rows), ") and "left" in lines[0]
    assert lines[-1].startswith("kNN graph: done, 1,000 rows in ")


def test_quick_work_logs_nothing(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="w2vlens"):
        assert list(progress_iter(range(5), "epochs", bar=False)) == [0, 1, 2, 3, 4]
    assert not caplog.records


def test_a_terminal_gets_a_bar(capsys: pytest.CaptureFixture[str]) -> None:
    with Progress(3, "t-SNE", "iterations", bar=True) as progress:
        progress.update(3)
    assert "t-SNE" in capsys.readouterr().err


def test_durations_read_as_people_write_them() -> None:
    assert [duration(s) for s in (7.4, 185, 3725)] == ["7s", "3m05s", "1h02m"]
