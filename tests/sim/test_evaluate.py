"""The report's figures on a seven-user population whose answers were worked out by hand.

Every user logs in on day 0 and draws a 12-month loan on day 20 (so inactivity stays out of
the way until day 110); the clock ends on day 100.

| user | label                        | what happens                          | first closure |
|------|------------------------------|---------------------------------------|---------------|
| u1   | LOW_CREDIT_SCORE             | score 550 on day 1                    | LOW, day 1    |
| u2   | LOW_CREDIT_SCORE             | score 650 on day 1                    | none          |
| u3   | none                         | score 580 on day 1                    | LOW, day 1    |
| u4   | none                         | nothing more                          | none          |
| u5   | ACCOUNT_INFO_CHURN (day 2)   | 4 card binds on day 2, an hour apart  | CHURN, +3 h   |
| u6   | ACCOUNT_INFO_CHURN           | score 500 on day 1, 4 binds on day 2  | LOW, day 1    |
| u7   | LOW_CREDIT_SCORE, restore    | 550 on day 1, 700 on day 2, logins    | LOW, day 1    |
|      |                              | on days 30, 60, 85                    | restore day 91|
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from schemas.events import Event
from tests.core.scenario import card, drawdown, login
from tests.core.scenario import score as score_event
from workers.cli import main
from workers.core.policy import Policy, load_policy
from workers.sim.evaluate import NOT_CLOSED, ReasonScore, compare, run_policies, score
from workers.sim.generator import Label
from workers.sim.report import Run, archetype_counts, render, write_report

T0 = datetime(2026, 3, 1, tzinfo=UTC)
UNTIL = T0 + timedelta(days=100)


def at(days: float) -> datetime:
    return T0 + timedelta(days=days)


def population() -> tuple[list[Event], dict[str, Label]]:
    events: list[Event] = []
    for user in ("u1", "u2", "u3", "u4", "u5", "u6", "u7"):
        events.append(login(at(0), f"{user}-phone", user=user))
        events.append(drawdown(at(20), f"{user}-L1", "1000.00", term=12, user=user))
    scores = [("u1", 1, 550), ("u2", 1, 650), ("u3", 1, 580), ("u6", 1, 500), ("u7", 1, 550)]
    events += [score_event(at(day), value, user=user) for user, day, value in scores]
    events.append(score_event(at(2), 700, user="u7"))
    for user in ("u5", "u6"):
        for hour in range(4):
            events.append(card(at(2 + hour / 24), f"c{hour}", "bind", user=user))
    events += [login(at(day), "u7-phone", user="u7") for day in (30, 60, 85)]
    events.sort(key=lambda e: e.occurred_at)

    def label(user: str, reason: str | None, started: float | None, **more: object) -> Label:
        return Label.model_validate(
            {"user_id": user, "archetype": "hand", "expected_reason": reason,
             "behaviour_started_at": None if started is None else at(started), **more}
        )  # fmt: skip

    labels = [
        label("u1", "LOW_CREDIT_SCORE", 1),
        label("u2", "LOW_CREDIT_SCORE", 1),
        label("u3", None, None, traits=["score_600"]),
        label("u4", None, None),
        label("u5", "ACCOUNT_INFO_CHURN", 2),
        label("u6", "ACCOUNT_INFO_CHURN", 2),
        label("u7", "LOW_CREDIT_SCORE", 1, expect_restore=True, archetype="restored"),
    ]
    return events, {each.user_id: each for each in labels}


DEFAULT = load_policy(None)
LENIENT = Policy.model_validate(
    {**DEFAULT.model_dump(), "version": "score-560", "low_credit_score": {"min_score": 560}}
)


def test_figures_match_the_hand_count() -> None:
    events, labels = population()
    [outcome] = run_policies(events, [DEFAULT], UNTIL)
    scores = score(labels, outcome)

    low, churn = scores.per_reason["LOW_CREDIT_SCORE"], scores.per_reason["ACCOUNT_INFO_CHURN"]
    assert (low.expected, low.decided, low.true_positives) == (3, 4, 2)
    assert low.precision == 0.5
    assert low.recall == pytest.approx(2 / 3)
    assert (churn.expected, churn.decided, churn.true_positives) == (2, 1, 1)
    assert (churn.precision, churn.recall) == (1.0, 0.5)
    assert scores.per_reason["CASH_OUT"].precision is None
    assert {cell: n for cell, n in scores.confusion.items() if n} == {
        ("LOW_CREDIT_SCORE", "LOW_CREDIT_SCORE"): 2,
        ("LOW_CREDIT_SCORE", NOT_CLOSED): 1,
        ("ACCOUNT_INFO_CHURN", "ACCOUNT_INFO_CHURN"): 1,
        ("ACCOUNT_INFO_CHURN", "LOW_CREDIT_SCORE"): 1,
        ("none", "LOW_CREDIT_SCORE"): 1,
        ("none", NOT_CLOSED): 1,
    }
    assert [c.label.user_id for c in scores.false_closures] == ["u3"]
    assert scores.false_closures[0].decision.reasons[0].evidence  # the numbers that closed it
    assert [label.user_id for label in scores.missed] == ["u2", "u6"]
    assert scores.latency_seconds["ACCOUNT_INFO_CHURN"] == [3 * 3600.0]
    assert scores.latency_seconds["LOW_CREDIT_SCORE"] == [0.0, 0.0]
    assert (scores.restore.expected, scores.restore.restored_as_expected) == (1, 1)
    assert scores.restore.days_to_eligibility == [90.0]
    assert not scores.restore.unexpected


def test_comparing_a_lower_score_bar_names_who_is_no_longer_closed() -> None:
    events, labels = population()
    before, after = run_policies(events, [DEFAULT, LENIENT], UNTIL)
    comparison = compare(labels, before, after)
    assert [c.label.user_id for c in comparison.no_longer_closed] == ["u3"]
    assert comparison.newly_closed == []
    assert score(labels, after).per_reason["LOW_CREDIT_SCORE"].precision == pytest.approx(2 / 3)


def test_report_renders_the_figures_and_writes_its_charts(tmp_path: Path) -> None:
    events, labels = population()
    outcomes = run_policies(events, [DEFAULT, LENIENT], UNTIL)
    scores = [score(labels, outcome) for outcome in outcomes]
    run = Run("events.jsonl", "labels.jsonl", len(events), 0, 0, UNTIL, archetype_counts(labels))
    text = render(run, scores, compare(labels, *outcomes))
    assert "| LOW_CREDIT_SCORE | 3 | 4 | 2 | 50.0% | 66.7% | 66.7% | 66.7% |" in text
    assert "| ACCOUNT_INFO_CHURN | 2 | 1 | 1 | 100.0% | 50.0% | 100.0% | 50.0% |" in text
    assert "1 of 2 users labelled with no reason were closed (50.0%)." in text
    assert "| ACCOUNT_INFO_CHURN | 1 | 3.0 h | 3.0 h | 3.0 h |" in text
    assert "- closure to eligibility: median 90.0 d" in text
    assert "0 users newly closed, 1 no longer closed." in text
    path = write_report(tmp_path / "report", run, scores, None)
    for chart in ("precision_recall.png", "time_to_decision.png"):
        assert (path.parent / chart).read_bytes().startswith(b"\x89PNG")


def test_simulate_then_evaluate_from_the_command_line(tmp_path: Path) -> None:
    events, labels, report = tmp_path / "e.jsonl", tmp_path / "l.jsonl", tmp_path / "r"
    common = ["--users", "40", "--days", "30", "--seed", "9", "--quiet"]
    assert main(["simulate", *common, "--out", str(events), "--labels", str(labels)]) == 0
    assert len(labels.read_text().splitlines()) == 40
    policy = tmp_path / "strict.toml"
    policy.write_text('version = "strict"\n[low_credit_score]\nmin_score = 700\n')
    argv = ["evaluate", "--events", str(events), "--labels", str(labels)]
    argv += ["--until", "2026-01-31T00:00:00Z", "--report", str(report)]
    assert main([*argv, "--compare-policy", str(policy)]) == 0
    text = (report / "report.md").read_text()
    assert "# Decision quality: `default-2026.12` vs `strict`" in text
    assert "users newly closed" in text


@pytest.mark.parametrize(
    ("argv", "code"),
    [
        (["simulate", "--users", "5", "--mix", "gambler=1", "--labels", "x"], 2),
        (["simulate", "--users", "5"], 2),
        (["evaluate", "--events", "missing.jsonl", "--labels", "missing", "--until",
          "2026-01-31T00:00:00Z", "--report", "r"], 2),
    ],
)  # fmt: skip
def test_command_line_mistakes_are_refused(argv: list[str], code: int, tmp_path: Path) -> None:
    assert main([*argv[:1], *(a if a != "x" else str(tmp_path / "l") for a in argv[1:])]) == code


def test_the_chart_marks_not_applicable_apart_from_zero_and_keeps_the_legend_outside() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from schemas.outputs import REASON_CODES
    from workers.sim.charts import NOT_APPLICABLE_HATCH, precision_recall_figure

    events, labels = population()
    scores = [score(labels, outcome) for outcome in run_policies(events, [DEFAULT], UNTIL)]
    per_reason = scores[0].per_reason
    per_reason["CASH_OUT"] = ReasonScore(true_positives=0, decided=3, expected=2)  # 0 % and 0 %
    expected_na = sum(
        (s.precision is None) + (s.recall is None) for s in per_reason.values()
    )  # fmt: skip
    zeros = sum((s.precision == 0) + (s.recall == 0) for s in per_reason.values())
    assert expected_na and zeros  # the population has both kinds
    figure = precision_recall_figure(scores)
    try:
        axes = figure.axes[0]
        bars = axes.patches
        assert len(bars) == 2 * len(REASON_CODES)
        hatched = [bar for bar in bars if bar.get_hatch() == NOT_APPLICABLE_HATCH]
        assert len(hatched) == expected_na
        assert all(bar.get_height() == 100 for bar in hatched)
        assert sum(1 for text in axes.texts if text.get_text() == "n/a") == expected_na
        # 0 % stays a real, unhatched bar of height 0.
        assert sum(1 for bar in bars if bar.get_height() == 0 and not bar.get_hatch()) == zeros
        figure.canvas.draw()
        renderer = figure.canvas.get_renderer()  # type: ignore[attr-defined]
        legend_box = axes.get_legend().get_window_extent(renderer)
        assert legend_box.x0 >= axes.get_window_extent(renderer).x1
    finally:
        plt.close(figure)
