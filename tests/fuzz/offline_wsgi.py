"""The WSGI application with name resolution switched off, for fuzzing a live server.

`make schemathesis` serves this instead of `playground.wsgi`: whatever host names the fuzzer puts in
`webhook_url` or `image_urls`, the checks at submit find them unresolvable (which they accept) and no
DNS query leaves the machine. The test suite does the same with its `fake_dns` fixture.
"""

import socket

from playground.engines import fetch
from playground.wsgi import application

__all__ = ["application"]


def refuse_to_resolve(host, port, *args, **kwargs):
    raise socket.gaierror(socket.EAI_NONAME, f"name resolution is off while fuzzing ({host})")


fetch.system_resolver = refuse_to_resolve
