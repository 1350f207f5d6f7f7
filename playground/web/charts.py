"""The usage page's spend chart, drawn on the server as SVG (no JavaScript, no inline styles).

Horizontal positions are percentages and vertical ones pixels, so the chart stretches to any width
while its text keeps its size: readable on a 360 px phone and on a desktop alike. The y axis lives
in a narrow SVG of its own beside the plot, because one SVG attribute cannot mix px and %.
"""

from dataclasses import dataclass
from datetime import date
from decimal import ROUND_CEILING, Decimal

from playground.generations.usage import UsageRow

HEIGHT = 200  # px, both SVGs
PLOT_TOP, PLOT_BOTTOM = 12, 172  # px: the y range of the bars; the dates sit below
DATE_BASELINE = 190
BAR_SHARE = 0.7  # of a day's width; the rest is the gap between bars
DATE_EVERY = 5  # days between date labels; the first and the last day are always labelled
NICE_STEPS = (Decimal(1), Decimal(2), Decimal("2.5"), Decimal(5), Decimal(10))


@dataclass(frozen=True)
class Bar:
    day: date
    row: UsageRow
    x: str  # percent of the plot's width
    width: str
    y: float
    height: float


@dataclass(frozen=True)
class Gridline:
    y: float  # the line, on a half pixel so 1 px stays crisp
    label: str

    @property
    def label_y(self) -> float:
        return self.y + 4  # the label's baseline, centring 11 px text on the line


@dataclass(frozen=True)
class DateLabel:
    text: str
    x: str
    anchor: str  # start for the first day, end for the last, so neither is cut off
    minor: bool  # hidden on phones, where only every other label fits


@dataclass(frozen=True)
class SpendChart:
    bars: list[Bar]
    gridlines: list[Gridline]
    dates: list[DateLabel]
    top: Decimal  # the value of the highest gridline
    peak: Decimal  # the highest day's spend
    height: int = HEIGHT
    date_baseline: int = DATE_BASELINE
    plot_bottom: float = PLOT_BOTTOM + 0.5  # a crisp 1 px axis line

    @property
    def first_day(self) -> date | None:
        return self.bars[0].day if self.bars else None

    @property
    def last_day(self) -> date | None:
        return self.bars[-1].day if self.bars else None


def axis_step(peak: Decimal, lines: int = 4) -> Decimal:
    """A round step (1, 2, 2.5 or 5 times a power of ten) giving about `lines` gridlines above 0."""
    if peak <= 0:
        return Decimal("0.25")
    raw = peak / lines
    magnitude = Decimal(10) ** raw.adjusted()
    return next(magnitude * step for step in NICE_STEPS if magnitude * step >= raw)


def money_label(value: Decimal, step: Decimal) -> str:
    """$0.10, $0.25, $1.5 -> "$1.50"; as many decimals as the step needs, cents at least below $1."""
    decimals = max(-step.normalize().as_tuple().exponent, 2 if step < 1 else 0)
    return f"${value:,.{decimals}f}"


def _percent(value: float) -> str:
    return f"{value:.3f}%"


def spend_chart(days: list[UsageRow]) -> SpendChart:
    """Bars for `days` (one row per day, oldest first, labelled with ISO dates), a y axis in money
    and date labels along the bottom."""
    peak = max((row.spend for row in days), default=Decimal(0))
    step = axis_step(peak)
    steps = max(1, int((peak / step).to_integral_value(rounding=ROUND_CEILING)))  # top >= peak
    top = step * steps
    plot_height = PLOT_BOTTOM - PLOT_TOP
    slot = 100 / max(len(days), 1)

    def y_of(value: Decimal) -> float:
        return round(PLOT_BOTTOM - float(value / top) * plot_height, 1)

    bars = []
    for index, row in enumerate(days):
        height = round(PLOT_BOTTOM - y_of(row.spend), 1)
        bars.append(
            Bar(
                day=date.fromisoformat(row.label),
                row=row,
                x=_percent(index * slot + slot * (1 - BAR_SHARE) / 2),
                width=_percent(slot * BAR_SHARE),
                y=PLOT_BOTTOM - height,
                height=height,
            )
        )
    gridlines = [Gridline(y_of(step * n) + 0.5, money_label(step * n, step)) for n in range(steps + 1)]
    last = len(days) - 1
    dates = []
    for index, bar in enumerate(bars):
        edge = index in (0, last)
        if not edge and (index % DATE_EVERY or last - index < DATE_EVERY):
            continue  # too close to the last label to fit beside it
        anchor = "start" if index == 0 else "end" if index == last else "middle"
        x = 0 if index == 0 else 100 if index == last else (index + 0.5) * slot
        minor = not edge and index % (2 * DATE_EVERY) != 0
        dates.append(DateLabel(f"{bar.day:%b} {bar.day.day}", _percent(x), anchor, minor))
    return SpendChart(bars=bars, gridlines=gridlines, dates=dates, top=top, peak=peak)
