"""The client's address: the one rule every view, limit and record uses.

A request's peer (`REMOTE_ADDR`) is the client, unless the peer is one of the reverse proxies named
in PLAYGROUND_TRUSTED_PROXIES (addresses or networks; none by default). Then the client is the
right-most address in `X-Forwarded-For` that is not itself a trusted proxy: each proxy appends the
address it was connected from, so everything left of the first address no trusted proxy vouches
for was written by the client and may be made up.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network

# The headers only a trusted proxy may set; TrustedProxyMiddleware drops them from anyone else.
FORWARDED_HEADERS = ("HTTP_X_FORWARDED_FOR", "HTTP_X_FORWARDED_PROTO", "HTTP_X_FORWARDED_HOST")


@lru_cache(maxsize=8)
def parse_networks(entries: tuple[str, ...]) -> tuple[Network, ...]:
    """`("10.0.0.5", "172.16.0.0/12")` -> networks (settings.py refuses a bad entry at start-up)."""
    return tuple(ipaddress.ip_network(entry.strip(), strict=False) for entry in entries)


def parse_address(text: str) -> Address | None:
    """An address as a proxy or server writes it (`203.0.113.7`, `203.0.113.7:5120`, `[2001:db8::1]:443`,
    `::ffff:203.0.113.7`), or None. IPv4-mapped IPv6 addresses are the IPv4 address they carry."""
    text = text.strip()
    if text.startswith("["):
        text = text[1 : text.find("]")]
    elif text.count(":") == 1:
        text = text.split(":")[0]
    try:
        address = ipaddress.ip_address(text)
    except ValueError:
        return None
    return (address.ipv4_mapped if address.version == 6 else None) or address


def is_trusted_proxy(address: Address) -> bool:
    return any(address in network for network in parse_networks(tuple(settings.PLAYGROUND_TRUSTED_PROXIES)))


def client_address(request: HttpRequest) -> str | None:
    """The address of whoever is calling (see the module's docstring), or None without a peer."""
    address = parse_address(request.META.get("REMOTE_ADDR") or "")
    if address is None or not is_trusted_proxy(address):
        return str(address) if address else None
    for hop in reversed(request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")):
        forwarded = parse_address(hop)
        if forwarded is None:  # nothing left of an entry we cannot read can be believed either
            break
        address = forwarded
        if not is_trusted_proxy(address):
            break
    return str(address)


def address_block(address: str | None) -> str:
    """What per-address limits count: the address itself for IPv4, its /64 for IPv6 (anyone with
    IPv6 has a whole /64 to move around in, so one address each would not slow them down)."""
    parsed = parse_address(address or "")
    if parsed is None:
        return "unknown"
    if parsed.version == 6:
        return str(ipaddress.ip_network(f"{parsed}/64", strict=False))
    return str(parsed)
