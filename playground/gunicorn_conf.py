"""gunicorn's settings for playground: `gunicorn --config python:playground.gunicorn_conf …` (as
`serve`, the Dockerfile and the README's production command run it).

Only Django decides what a forwarded header means: playground.access believes X-Forwarded-For,
-Proto and -Host only from PLAYGROUND_TRUSTED_PROXIES. gunicorn on its own believes
X-Forwarded-Proto (and -Protocol, -Ssl) from 127.0.0.1 and marks the request https before Django
sees it, so anyone on the same host, with no proxy in front, could turn our output URLs and demo
links into https://. Here gunicorn believes nobody's.
"""

forwarded_allow_ips = ""
secure_scheme_headers: dict[str, str] = {}
forwarder_headers = ""
