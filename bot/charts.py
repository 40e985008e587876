"""Charts people would rather see than read: the digest's counts as a PNG."""

from __future__ import annotations

import io
from typing import Any

from core.digest import Change, Digest


def _signed(delta: int) -> str:
    return f"+{delta}" if delta > 0 else str(delta)


THEMES_SHOWN = 8
THEME_LABEL_CHARS = 32


def digest_png(digest: Digest) -> bytes:
    """Bar panels, this period against the one before: by category, by severity, and (with
    themes) the biggest themes."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    panels: list[tuple[dict[str, Change], str]] = [
        (digest.by_category, "by category"),
        (digest.by_severity, "by severity"),
    ]
    if digest.themes is not None and digest.themes.themes:
        top = digest.themes.themes[:THEMES_SHOWN]
        panels.append(
            (
                {_short(t.name): Change(t.count, t.previous) for t in top},
                "biggest themes",
            )
        )
    fig, axes = plt.subplots(
        1, len(panels), figsize=(5.5 * len(panels), 4), constrained_layout=True
    )
    for axis, (rows, title) in zip(axes, panels, strict=True):
        names = list(rows)
        positions = range(len(names))
        axis.barh(
            [p + 0.2 for p in positions],
            [rows[n].before for n in names],
            0.4,
            color="#b0b7c3",
            label="period before",
        )
        axis.barh(
            [p - 0.2 for p in positions],
            [rows[n].now for n in names],
            0.4,
            color="#2b6cb0",
            label="this period",
        )
        axis.set_yticks(list(positions), names)
        axis.invert_yaxis()
        axis.set_title(title)
        axis.set_xlabel("items")
        axis.xaxis.set_major_locator(MaxNLocator(integer=True))
        axis.legend(loc="lower right", fontsize=8)
    fig.suptitle(
        f"{digest.since:%Y-%m-%d %H:%M} to {digest.until:%Y-%m-%d %H:%M} UTC: "
        f"{digest.items.now} items ({_signed(digest.items.delta)})"
    )
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=110)
    plt.close(fig)
    return out.getvalue()


def _short(name: str) -> str:
    """A theme's name as a tick label: one line, clipped, and never read as mathtext."""
    line = " ".join(name.split())
    line = line if len(line) <= THEME_LABEL_CHARS else line[: THEME_LABEL_CHARS - 1] + "…"
    return line.replace("$", "\\$")


def duplicates_png(quality: dict[str, Any]) -> bytes:
    """`bench duplicates --png`: per pair set, precision and recall against the number of
    reviewers' merge/split votes, with the threshold they learned."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sets = quality["sets"]
    fig, axes = plt.subplots(1, len(sets), figsize=(5.5 * len(sets), 4), squeeze=False)
    for axis, one in zip(axes[0], sets, strict=True):
        rows = one["after_votes"]
        votes = [r["votes"] for r in rows]
        axis.plot(votes, [r["precision"] for r in rows], "o-", color="#2b6cb0", label="precision")
        axis.plot(votes, [r["recall"] for r in rows], "s-", color="#c05621", label="recall")
        axis.set_ylim(0, 1)
        axis.set_xlabel("merge/split votes")
        axis.set_title(f"{one['name']}\n{one['reports']} reports", fontsize=10)
        axis.grid(alpha=0.3)
        twin = axis.twinx()
        twin.plot(votes, [r["threshold"] for r in rows], "--", color="#718096", label="threshold")
        twin.set_ylim(0, 1)
        twin.set_ylabel("learned threshold", color="#718096")
        lines = axis.get_lines() + twin.get_lines()
        axis.legend(lines, [line.get_label() for line in lines], loc="lower right", fontsize=8)
    fig.suptitle("Duplicate detection: what reviewers' votes do (held-out half of the pairs)")
    fig.tight_layout()
    out = io.BytesIO()
    fig.savefig(out, format="png", dpi=110)
    plt.close(fig)
    return out.getvalue()
