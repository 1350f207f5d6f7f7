from datetime import timedelta
from decimal import Decimal

from django import template
from django.conf import settings
from django.utils import timezone
from django.utils.html import format_html
from django.utils.timesince import timeuntil

from playground.web.join import qr_svg

register = template.Library()


@register.filter
def duration(value: timedelta | None) -> str:
    """12.3 s, 2 min 5 s."""
    if value is None:
        return ""
    seconds = max(0.0, value.total_seconds())
    if seconds < 60:
        return f"{seconds:.1f} s"
    minutes, rest = divmod(int(seconds), 60)
    return f"{minutes} min {rest} s"


@register.filter
def in_words(value: timedelta) -> str:
    """A span of time as people say it: 1 day, 2 hours, 30 minutes."""
    now = timezone.now()
    return timeuntil(now + value, now)


@register.filter
def money(value: Decimal | float | None) -> str:
    if value is None:
        return "—"
    return f"${Decimal(str(value)).normalize():f}"


@register.filter
def short_value(value) -> str:
    """A task input value for people: data URIs abbreviated, long text cut."""
    text = str(value)
    if text.startswith("data:"):
        return f"{text[:24]}… ({len(text) * 3 // 4 // 1024} KB)"
    return text if len(text) <= 120 else text[:120] + "…"


@register.filter
def minus(value, other) -> Decimal:
    """What is left: value - other, never below zero (a budget minus its spend)."""
    left = Decimal(str(value or 0)) - Decimal(str(other or 0))
    return max(left, Decimal(0))


@register.simple_tag
def upload_limits() -> str:
    """The run form's size limits as data attributes, so app.js can refuse files before sending
    them (naming the field) rather than after the server's 413."""
    return format_html(
        'data-max-body="{}" data-max-file="{}"',
        settings.PLAYGROUND_MAX_BODY_BYTES,
        settings.PLAYGROUND_MAX_INPUT_IMAGE_BYTES,
    )


@register.simple_tag
def qr_code(text: str, label: str) -> str:
    """`text` (a demo pass's link) as an inline SVG QR code named `label` (see `web.join`)."""
    return qr_svg(text, label=label)
