"""Letting people join a demo pass: its link, and a QR code of the link for phones in the room.

The QR code is drawn here, server-side, as inline SVG (segno): no script, no image request, nothing
the Content-Security-Policy has to allow, and it prints and scales sharply on a projector.
"""

import segno
from django.http import HttpRequest
from django.urls import reverse
from django.utils.html import format_html
from django.utils.safestring import SafeString, mark_safe

from playground.access.passes import pass_token
from playground.generations.outputs import public_base
from playground.keys.models import DemoPass


def pass_link(request: HttpRequest, demo_pass: DemoPass) -> str:
    """The pass's link (its landing page), absolute: on PLAYGROUND_PUBLIC_URL when it is set, so a
    phone that scans it reaches the server by its public name, else on the host of this request."""
    return public_base(request) + reverse("demo", args=[pass_token(demo_pass)])


def qr_svg(text: str, *, label: str) -> SafeString:
    """`text` as a QR code (error correction M: it still scans from a screen with some glare), an
    SVG sized by CSS (`.qr-code svg`), named `label` for screen readers."""
    code = segno.make_qr(text, error="m")
    # segno writes only paths and a viewBox: nothing from `text` reaches the markup as text.
    svg = code.svg_inline(scale=1, dark="#000", light="#fff", omitsize=True, svgclass="qr", lineclass=None)
    return format_html('<div class="qr-code" role="img" aria-label="{}">{}</div>', label, mark_safe(svg))  # noqa: S308
