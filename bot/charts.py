"""Charts people would rather see than read: the digest's counts as a PNG."""

from __future__ import annotations

import io

from core.digest import Digest


def _signed(delta: int) -> str:
    return f"+{delta}" if delta > 0 else str(delta)


def digest_png(digest: Digest) -> bytes:
    """Two bar panels, this period against the one before: by category, by severity."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(1, 2, figsize=(11, 4), constrained_layout=True)
    for axis, rows, title in (
        (axes[0], digest.by_category, "by category"),
        (axes[1], digest.by_severity, "by severity"),
    ):
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
