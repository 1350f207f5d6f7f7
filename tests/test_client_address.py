"""One rule finds the client's address (playground/access/addresses.py): the peer, or behind a
trusted proxy the right-most X-Forwarded-For entry no trusted proxy vouches for. The API's key
records and limits follow it; forwarded headers from anyone else are dropped."""

import pytest
from django.test import RequestFactory

from playground.access.addresses import address_block, client_address
from playground.keys.models import ApiKey


def address(peer, forwarded=None):
    meta = {"REMOTE_ADDR": peer}
    if forwarded is not None:
        meta["HTTP_X_FORWARDED_FOR"] = forwarded
    return client_address(RequestFactory().get("/", **meta))


@pytest.fixture
def trusted(settings):
    def trust(*proxies):
        settings.PLAYGROUND_TRUSTED_PROXIES = list(proxies)

    return trust


def test_it_is_the_peer_when_no_proxy_is_trusted():
    assert address("198.51.100.7", "203.0.113.9") == "198.51.100.7"


def test_it_ignores_x_forwarded_for_from_a_peer_that_is_not_trusted(trusted):
    trusted("10.0.0.2")
    assert address("198.51.100.7", "203.0.113.9") == "198.51.100.7"


def test_it_takes_the_right_most_address_no_trusted_proxy_vouches_for(trusted):
    trusted("127.0.0.1", "10.0.0.0/8")
    assert address("127.0.0.1", "203.0.113.9") == "203.0.113.9"
    # made up by the client, the address the first proxy saw, then a second proxy
    assert address("127.0.0.1", "1.2.3.4, 203.0.113.9, 10.1.2.3") == "203.0.113.9"
    assert address("10.9.9.9", "1.2.3.4,203.0.113.9") == "203.0.113.9"


def test_it_keeps_the_peer_when_a_trusted_proxy_sends_no_address(trusted):
    trusted("127.0.0.1")
    assert address("127.0.0.1") == "127.0.0.1"
    assert address("127.0.0.1", "") == "127.0.0.1"


def test_a_chain_of_trusted_proxies_only_gives_the_furthest(trusted):
    trusted("10.0.0.0/8")
    assert address("10.0.0.1", "10.0.0.3, 10.0.0.2") == "10.0.0.3"


def test_nothing_left_of_an_unreadable_entry_is_believed(trusted):
    trusted("127.0.0.1", "10.0.0.0/8")
    assert address("127.0.0.1", "203.0.113.9, unknown") == "127.0.0.1"
    assert address("127.0.0.1", "203.0.113.9, unknown, 10.0.0.5") == "10.0.0.5"


def test_it_reads_ports_brackets_and_ipv4_mapped_addresses(trusted):
    trusted("127.0.0.1")
    assert address("::ffff:127.0.0.1", "203.0.113.9:5120") == "203.0.113.9"
    assert address("127.0.0.1", "[2001:db8::1]:443") == "2001:db8::1"
    assert address("127.0.0.1", "2001:0db8:0:0::1") == "2001:db8::1"  # one spelling per address
    assert address("::ffff:198.51.100.7") == "198.51.100.7"


def test_ipv6_trusted_proxies_and_clients(trusted):
    trusted("fd00::/8")
    assert address("fd00::5", "2001:db8::7") == "2001:db8::7"


def test_per_address_limits_count_an_ipv6_client_by_its_64():
    assert address_block("2001:db8:1:2:aaaa::1") == address_block("2001:db8:1:2::9") == "2001:db8:1:2::/64"
    assert address_block("203.0.113.9") == "203.0.113.9"
    assert address_block(None) == "unknown"


def test_x_forwarded_proto_counts_only_from_a_trusted_proxy(client, db, settings, trusted):
    settings.SECURE_SSL_REDIRECT = True
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    trusted("10.0.0.2")
    https = {"X-Forwarded-Proto": "https"}
    assert client.get("/healthz", headers=https, REMOTE_ADDR="10.0.0.2").status_code == 200
    forged = client.get("/healthz", headers=https, REMOTE_ADDR="198.51.100.7")
    assert forged.status_code == 301 and forged["Location"].startswith("https://")


def test_forwarded_headers_from_others_are_dropped_before_any_view(rf, settings, trusted):
    from playground.access.middleware import TrustedProxyMiddleware

    trusted("10.0.0.2")
    seen = {}
    middleware = TrustedProxyMiddleware(lambda request: seen.update(request.META) or None)
    headers = {"HTTP_X_FORWARDED_FOR": "203.0.113.9", "HTTP_X_FORWARDED_PROTO": "https"}
    middleware(rf.get("/", REMOTE_ADDR="198.51.100.7", **headers))
    assert "HTTP_X_FORWARDED_FOR" not in seen and "HTTP_X_FORWARDED_PROTO" not in seen
    middleware(rf.get("/", REMOTE_ADDR="10.0.0.2", **headers))
    assert seen["HTTP_X_FORWARDED_FOR"] == "203.0.113.9" and seen["HTTP_X_FORWARDED_PROTO"] == "https"


def test_a_keys_last_use_records_the_client_behind_a_trusted_proxy(api, user, trusted):
    trusted("127.0.0.1")
    api.get("/api/v1/models", headers={"X-Forwarded-For": "203.0.113.9"})
    assert ApiKey.objects.get(user=user).last_used_ip == "203.0.113.9"


def test_a_keys_last_use_ignores_x_forwarded_for_without_trusted_proxies(api, user):
    api.get("/api/v1/models", headers={"X-Forwarded-For": "203.0.113.9"})
    assert ApiKey.objects.get(user=user).last_used_ip == "127.0.0.1"


def test_a_file_fetched_with_a_key_records_the_same_address(api, user, trusted, make_task, catalog):
    trusted("127.0.0.1")
    task = make_task(user, catalog)
    path = task.output["images"][0]["file"].rsplit("/", 1)[-1]
    response = api.client.get(
        f"/files/{task.id}/{path}",
        headers={"Authorization": f"Bearer {api.key}", "X-Forwarded-For": "203.0.113.44"},
    )
    assert response.status_code == 200
    assert ApiKey.objects.get(user=user).last_used_ip == "203.0.113.44"


def test_a_keys_rate_limit_holds_from_every_address(api, other_api, settings, trusted):
    trusted("127.0.0.1")
    settings.PLAYGROUND_API_RATE_LIMIT = "3/60"
    for client_at in ("203.0.113.1", "203.0.113.2", "203.0.113.3"):
        assert api.get("/api/v1/models", headers={"X-Forwarded-For": client_at}).status_code == 200
    limited = api.get("/api/v1/models", headers={"X-Forwarded-For": "203.0.113.4"})
    assert limited.status_code == 429 and 1 <= int(limited["Retry-After"]) <= 61
    # The limit is the key's: another key from the same address is not slowed down.
    assert other_api.get("/api/v1/models", headers={"X-Forwarded-For": "203.0.113.4"}).status_code == 200


def test_rate_counts_hold_across_processes(spawn):
    from playground.access.ratelimit import Limit, over_limit

    limit = Limit.parse("2/3600")
    assert over_limit("shared", limit) is None
    assert over_limit("shared", limit) is None
    code = "from playground.access.ratelimit import *; print('wait', over_limit('shared', Limit(2, 3600)))"
    other = spawn("shell", "-c", code)
    assert other.wait(timeout=60) == 0
    assert "wait None" not in other.log.read_text() and "wait " in other.log.read_text()
