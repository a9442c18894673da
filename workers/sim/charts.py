"""Small PNG charts for the decision-quality report (matplotlib, no display needed)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from schemas.outputs import REASON_CODES
from workers.errors import LineguardError
from workers.sim.evaluate import Scores

_DPI = 72


def draw_charts(directory: Path, scores: Sequence[Scores]) -> list[Path]:
    try:
        import matplotlib
    except ImportError as exc:
        raise LineguardError(
            "the report's charts need matplotlib, in the `reports` extra "
            "(pip install 'lineguard[reports]', or `make install`)"
        ) from exc

    matplotlib.use("Agg")
    return [_precision_recall(directory, scores), _time_to_decision(directory, scores[0])]


NOT_APPLICABLE_HATCH = "///"


def _precision_recall(directory: Path, scores: Sequence[Scores]) -> Path:
    import matplotlib.pyplot as plt

    figure = precision_recall_figure(scores)
    path = directory / "precision_recall.png"
    figure.savefig(path, dpi=_DPI, bbox_inches="tight")
    plt.close(figure)
    return path


def precision_recall_figure(scores: Sequence[Scores]) -> Any:
    """Bars of precision and recall per reason code and policy. A figure that does not
    apply (no user closed for the reason, or none expected) is a hatched full-height bar
    marked n/a, so it cannot be mistaken for 0 %; the legend sits right of the plot."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    series = []
    for each in scores:
        version = each.outcome.version
        series.append(
            (f"precision {version}", [each.per_reason[c].precision for c in REASON_CODES])
        )
        series.append((f"recall {version}", [each.per_reason[c].recall for c in REASON_CODES]))
    width = 0.8 / len(series)
    figure, axes = plt.subplots(figsize=(10.5, 3.6))
    for index, (name, values) in enumerate(series):
        color = f"C{index}"
        for code, value in enumerate(values):
            position = code + (index - (len(series) - 1) / 2) * width
            if value is None:
                axes.bar(
                    position, 100, width, facecolor="none", edgecolor=color,
                    hatch=NOT_APPLICABLE_HATCH, linewidth=0.5, gid="n/a",
                )  # fmt: skip
                axes.text(
                    position, 50, "n/a", rotation=90, fontsize=7, ha="center", va="center",
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1},
                )  # fmt: skip
            else:
                axes.bar(position, 100 * value, width, color=color, gid=name)
    handles = [Patch(color=f"C{index}", label=name) for index, (name, _) in enumerate(series)]
    handles.append(
        Patch(facecolor="none", edgecolor="grey", hatch=NOT_APPLICABLE_HATCH, label="n/a")
    )
    axes.set_xticks(range(len(REASON_CODES)))
    axes.set_xticklabels([code.replace("_", "\n") for code in REASON_CODES], fontsize=7)
    axes.set_ylabel("%")
    axes.set_ylim(0, 105)
    axes.legend(
        handles=handles, fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1), borderaxespad=0
    )
    axes.set_title("Precision and recall per reason code", fontsize=9)
    figure.tight_layout()
    return figure


def _time_to_decision(directory: Path, scores: Scores) -> Path:
    import matplotlib.pyplot as plt

    codes = [code for code in REASON_CODES if scores.latency_seconds[code]]
    figure, axes = plt.subplots(figsize=(9, 3.2))
    if codes:
        days = [[value / 86_400 for value in scores.latency_seconds[code]] for code in codes]
        axes.boxplot(days, vert=False, showfliers=False)
        axes.set_yticks(range(1, len(codes) + 1))
        axes.set_yticklabels(codes, fontsize=7)
    axes.set_xlabel("days from the start of the risky behaviour to the closure")
    axes.set_title(f"Time to decision ({scores.outcome.version})", fontsize=9)
    figure.tight_layout()
    path = directory / "time_to_decision.png"
    figure.savefig(path, dpi=_DPI)
    plt.close(figure)
    return path
