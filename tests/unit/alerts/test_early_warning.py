"""The figures that judge alerts against outcomes: early recall, lead, noise on healthy accounts, per rule."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from alerts.early_warning import AlertRecord, Messages, Outcome, early_warning, report_lines

END = datetime(2026, 12, 31, tzinfo=UTC)
LOSS = datetime(2026, 6, 1, tzinfo=UTC)
D = timedelta(days=1)


def alert(account: str, rule: str, opened: datetime, delivery: str | None = "digest") -> AlertRecord:
    return AlertRecord(account, rule, opened, delivery)  # type: ignore[arg-type]


# (case, alerts on the lost account, caught early, lead days)
LOSS_CASES = [
    ("alerted 100 days ahead", [alert("lost", "usage_drop", LOSS - 100 * D)], True, 100.0),
    ("exactly 30 days ahead counts", [alert("lost", "usage_drop", LOSS - 30 * D)], True, 30.0),
    ("29 days ahead is too late", [alert("lost", "usage_drop", LOSS - 29 * D)], False, None),
    ("before the 180-day window does not count", [alert("lost", "usage_drop", LOSS - 181 * D)], False, None),
    ("never notified does not count", [alert("lost", "usage_drop", LOSS - 90 * D, None)], False, None),
    ("folded into a page counts", [alert("lost", "nps_detractor", LOSS - 90 * D, "folded")], True, 90.0),
    (
        "lead from the first alert in the window",
        [alert("lost", "usage_drop", LOSS - 60 * D), alert("lost", "risk_level", LOSS - 20 * D)],
        True,
        60.0,
    ),
]


@pytest.mark.parametrize(("alerts", "caught", "lead"), [c[1:] for c in LOSS_CASES], ids=[c[0] for c in LOSS_CASES])
def test_a_loss_alerted_early(alerts: list[AlertRecord], caught: bool, lead: float | None) -> None:
    f = early_warning(alerts, {"lost": Outcome(LOSS, "churned")}, ["lost"], end=END)
    assert (f.losses, f.losses_alerted_early) == (1, int(caught))
    assert f.missed == (() if caught else ("lost",))
    assert f.median_lead_days == lead


def test_healthy_accounts_alerted_and_paged_count_judged_alerts_only() -> None:
    alerts = [
        alert("renewed", "payment_late", LOSS - 10 * D),  # judged: an outcome came after it
        alert("paged", "champion_left", END - 200 * D, "immediate"),  # judged: its window has passed
        alert("recent", "usage_drop", END - 20 * D),  # too recent to judge, and no outcome: left out
    ]
    outcomes = {"renewed": Outcome(LOSS, "renewed")}
    f = early_warning(alerts, outcomes, ["renewed", "paged", "recent", "quiet"], end=END)
    assert (f.healthy, f.healthy_alerted, f.healthy_paged) == (4, 2, 1)
    assert f.healthy_alerted_share == 0.5
    assert f.healthy_paged_share == 0.25


def test_rule_precision_and_contribution_to_recall() -> None:
    alerts = [
        alert("lost", "usage_drop", LOSS - 90 * D),
        alert("lost", "nps_detractor", LOSS - 60 * D),
        alert("lost", "usage_drop", LOSS + 5 * D),  # after the loss: neither right nor wrong
        alert("other", "usage_drop", END - 300 * D),
        alert("lost2", "nps_detractor", LOSS - 40 * D),
    ]
    outcomes = {"lost": Outcome(LOSS, "downgraded"), "lost2": Outcome(LOSS, "churned")}
    f = early_warning(alerts, outcomes, ["lost", "lost2", "other"], end=END, digest_only=["payment_late"])
    rules = {r.rule: r for r in f.rules}
    assert (rules["usage_drop"].alerts, rules["usage_drop"].judged, rules["usage_drop"].on_losses) == (3, 2, 1)
    assert rules["usage_drop"].precision == 0.5
    assert rules["nps_detractor"].precision == 1.0
    assert (rules["usage_drop"].losses_caught, rules["usage_drop"].losses_only) == (1, 0)
    assert (rules["nps_detractor"].losses_caught, rules["nps_detractor"].losses_only) == (2, 1)
    assert rules["payment_late"].digest_only
    assert rules["payment_late"].alerts == 0


def test_messages_per_kam_week_and_the_ceiling() -> None:
    f = early_warning(
        [],
        {"lost": Outcome(LOSS, "churned"), "gone": Outcome(LOSS, "churned")},
        ["lost", "gone"],
        end=END,
        messages=Messages(immediate=8, digests=20, kam_weeks=40.0, digests_with_alerts=16),
        unannounced=["gone"],
    )
    assert (f.immediate_per_kam_week, f.digests_per_kam_week) == (0.2, 0.5)
    assert f.recall == 0.0
    assert f.recall_ceiling == 0.5
    text = "\n".join(report_lines(f))
    assert "ceiling 0.50" in text
    assert "immediate messages 0.20, digests 0.50 (0.40 with new alerts)" in text


def test_accounts_out_of_scope_are_ignored() -> None:
    alerts = [alert("held-out", "usage_drop", LOSS - 90 * D)]
    f = early_warning(alerts, {"held-out": Outcome(LOSS, "churned")}, ["tuning"], end=END)
    assert (f.accounts, f.losses, f.healthy, f.rules) == (1, 0, 1, ())
