"""`aigw keys --chart`: each key's answers per UTC hour, stacked by class, one panel per key."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from infra.cli import api, usage

if TYPE_CHECKING:
    from matplotlib.axes import Axes


class ChartKey(Protocol):
    """What the chart draws of one key (infra/cli/keys.py `KeyHealth`)."""

    @property
    def provider(self) -> str: ...

    @property
    def key_id(self) -> str: ...

    @property
    def verdict(self) -> str: ...

    @property
    def hourly(self) -> Mapping[datetime, Mapping[Any, int]]: ...


class ChartReport(Protocol):
    """What the chart draws of the report (infra/cli/keys.py `KeysReport`)."""

    @property
    def provider(self) -> str | None: ...

    def rows(self) -> Sequence[ChartKey]: ...


CLASS_COLOURS: dict[str, str] = {
    "ok": "#2e9e44",
    "rateLimited": "#f0a020",
    "refused": "#d62728",
    "serverErrors": "#8e44ad",
    "other": "#a0a0a0",
}
CLASS_LABELS: dict[str, str] = {
    "ok": "ok (2xx)",
    "rateLimited": "rateLimited (429)",
    "refused": "refused (401/402/403)",
    "serverErrors": "serverErrors (5xx)",
    "other": "other",
}
VERDICT_COLOURS: dict[str, str] = {
    "replace": "#b71c1c",
    "partial": "#e5533d",
    "rate-limited": "#c07800",
    "failing": "#8e44ad",
    "unknown": "#707070",
    "healthy": "#2e9e44",
}
CLASSES = tuple(CLASS_COLOURS)
"""The answer classes, bottom to top (infra/cli/keys.py `CLASSES`, in its order)."""
HOUR = timedelta(hours=1)
TICK_STEPS = (1, 2, 3, 6, 12, 24, 48, 96, 168, 336, 672)
"""Hours between two labelled ticks of the chart: the first that leaves about a dozen."""


def draw_chart(report: ChartReport, target: api.Target, window: usage.Window, path: Path) -> None:
    """Each key's answers per UTC hour over the window, stacked by class, one panel per key."""
    # matplotlib takes a while to import: only a run that draws a chart pays for it.
    from matplotlib import ticker
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.patches import Patch

    keys = report.rows()
    panels = max(len(keys), 1)
    figure = Figure(figsize=(10, 1.1 + 1.7 * panels), layout="constrained")
    FigureCanvasAgg(figure)  # the Agg renderer, without pyplot's global state
    axes: list[Axes] = list(figure.subplots(panels, 1, sharex=True, squeeze=False)[:, 0])
    first = window.start.replace(minute=0, second=0, microsecond=0)
    hours = [first + HOUR * index for index in range(int((window.end - first) / HOUR) + 1)]
    for ax, key in zip(axes, keys, strict=False):
        bottom = [0] * len(hours)
        for kind in CLASSES:
            heights = [key.hourly.get(hour, {}).get(kind, 0) for hour in hours]
            if any(heights):
                ax.bar(
                    range(len(hours)),
                    heights,
                    width=0.9,
                    bottom=bottom,
                    align="edge",
                    color=CLASS_COLOURS[kind],
                )
                bottom = [low + height for low, height in zip(bottom, heights, strict=True)]
        ax.set_title(f"{key.provider} · {key.key_id}", loc="left", fontsize=10)
        ax.set_title(
            key.verdict,
            loc="right",
            fontsize=10,
            fontweight="bold",
            color=VERDICT_COLOURS[key.verdict],
        )
        ax.set_ylabel("answers / h", fontsize=8)
        ax.yaxis.set_major_locator(ticker.MaxNLocator(nbins=4, integer=True))
        ax.grid(axis="y", alpha=0.3)
        ax.set_ymargin(0.1)
    if not keys:
        axes[0].text(
            0.5,
            0.5,
            "no key answered in this window",
            ha="center",
            va="center",
            transform=axes[0].transAxes,
        )
        axes[0].set_yticks([])
    # The x axis counts hours from the first one drawn; bar i is the hour starting at hours[i].
    axes[-1].set_xlim((window.start - first) / HOUR, (window.end - first) / HOUR)
    ticks = hour_ticks(hours)
    axes[-1].set_xticks(list(ticks), labels=list(ticks.values()), fontsize=8)
    axes[-1].set_xlabel("UTC")
    scope = f", provider {report.provider}" if report.provider else ""
    figure.suptitle(
        f"gateway {target.gateway_id}: answers per key and hour, "
        f"{usage.stamp(window.start)} to {usage.stamp(window.end)}{scope}",
        fontsize=10,
    )
    figure.legend(
        handles=[Patch(color=CLASS_COLOURS[kind], label=CLASS_LABELS[kind]) for kind in CLASSES],
        loc="outside lower center",
        ncols=len(CLASSES),
        fontsize=8,
        frameon=False,
    )
    try:
        figure.savefig(path, format="png", dpi=100)
    except OSError as error:
        raise api.OperateError(
            f"could not write the chart to {str(path)!r}: {error.strerror or error}"
        ) from None


def hour_ticks(hours: list[datetime]) -> dict[int, str]:
    """At most about a dozen labelled ticks on round hours (or days), by position in `hours`."""
    step = next((step for step in TICK_STEPS if len(hours) / step <= 12), TICK_STEPS[-1])
    ticks: dict[int, str] = {}
    for index, hour in enumerate(hours):
        if step < 24:
            if hour.hour % step:
                continue
            # The date is written under the first tick and at every midnight, the time always.
            with_date = not ticks or hour.hour == 0
            ticks[index] = f"{hour:%H:%M}" + (f"\n{hour:%b %d}" if with_date else "")
        elif hour.hour == 0 and hour.toordinal() % (step // 24) == 0:
            ticks[index] = f"{hour:%b %d}"
    return ticks
