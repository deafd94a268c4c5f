from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from health_engine.backtest import AccountOutcome, ScorePoint, evaluate, roc_auc

T0 = datetime(2025, 1, 1, tzinfo=UTC)
END = T0 + timedelta(days=540)


def day(n: int) -> datetime:
    return T0 + timedelta(days=n)


def daily(levels: dict[int, tuple[float, str]], until: int) -> list[ScorePoint]:
    """A daily series holding each (risk, level) from its day on."""
    points, current = [], (10.0, "low")
    for n in range(until):
        current = levels.get(n, current)
        points.append(ScorePoint(day(n), *current))
    return points


def test_early_flag_counts_for_every_horizon_and_late_flag_only_for_short_ones() -> None:
    history = {
        "early": daily({100: (80, "high")}, 200),  # flagged 100 days before churn
        "late": daily({180: (70, "high")}, 200),  # 20 days before
        "missed": daily({}, 200),
        "calm": daily({}, 540),
    }
    outcomes = {
        "early": AccountOutcome(day(200), "churned"),
        "late": AccountOutcome(day(200), "downgraded"),
        "missed": AccountOutcome(day(200), "churned"),
        "calm": AccountOutcome(day(300), "renewed"),
    }
    h30, h90 = evaluate(history, outcomes, end=END, horizons=(30, 90))

    assert h30.recall == pytest.approx(1 / 3)
    assert h90.recall == pytest.approx(1 / 3)
    assert h30.flagged_losses == 1
    assert h30.median_lead_days == 100
    assert h30.precision == 1.0  # "late" is neither a hit at 30 days nor a false alarm
    # peaks up to 30 days before the reference: early 80, late 10, missed 10 vs calm 10 -> (1 + .5 + .5) / 3
    assert h30.auc == pytest.approx(2 / 3)


def test_false_alarm_lowers_precision_but_a_too_recent_flag_is_left_out() -> None:
    history = {
        "loss": daily({10: (90, "critical")}, 100),
        "alarm": daily({50: (80, "high")}, 540),  # never churned, 490 days to prove it
        "recent": daily({500: (80, "high")}, 540),  # flagged 40 days before the end: unknown yet
    }
    outcomes = {"loss": AccountOutcome(day(100), "churned")}
    (report,) = evaluate(history, outcomes, end=END, horizons=(30,))

    assert report.precision == 0.5
    assert report.flagged == 2


def test_a_loss_flagged_again_within_the_window_is_a_true_flag_despite_an_old_false_alarm() -> None:
    # The wording: an account reaching high that churned within 180 days of it is a true flag, even when
    # noise flagged it once long before; judging it by its first flag ever would call it a false alarm.
    history = {
        "reflagged": daily({20: (80, "high"), 30: (10, "low"), 300: (75, "high")}, 400),
        "stale": daily({20: (80, "high"), 30: (10, "low")}, 400),  # only flagged 380 days before its loss
        "too_late": daily({390: (80, "high")}, 540),  # flagged 10 days before its loss, and silent after it
    }
    outcomes = {name: AccountOutcome(day(400), "churned") for name in history}
    h30, h120 = evaluate(history, outcomes, end=END, horizons=(30, 120))

    assert h30.flagged_losses == 1
    assert h30.recall == pytest.approx(1 / 3)
    assert h30.precision == 0.5  # reflagged: true; stale: a false alarm; too_late: neither, even after its loss
    assert h30.flagged == 2
    assert h30.median_lead_days == 100  # from the first flag within the window
    # At 120 days the second flag (100 days before) is too late: reflagged is no longer caught, and its old flag
    # (380 days before the loss, outside the window) is judged a false alarm.
    assert h120.flagged_losses == 0
    assert h120.precision == 0.0
    assert h120.flagged == 2


def test_roc_auc_known_values() -> None:
    assert roc_auc([0.9, 0.8], [0.1, 0.2]) == 1.0
    assert roc_auc([0.1], [0.9]) == 0.0
    assert roc_auc([0.5], [0.5]) == 0.5
    assert roc_auc([0.9, 0.3], [0.5, 0.1]) == 0.75
    assert roc_auc([], [0.1]) is None


@given(st.lists(st.floats(0, 100), min_size=1, max_size=30), st.lists(st.floats(0, 100), min_size=1, max_size=30))
def test_roc_auc_is_a_probability_and_symmetric(positives: list[float], negatives: list[float]) -> None:
    forward = roc_auc(positives, negatives)
    backward = roc_auc(negatives, positives)
    assert forward is not None
    assert backward is not None
    assert 0.0 <= forward <= 1.0
    assert forward + backward == pytest.approx(1.0)
