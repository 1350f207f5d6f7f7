"""Pages that show secrets or pass links send `Cache-Control: no-store` (issue 13, item 6): the
finding was `/keys` showing live demo-pass links without it."""

from decimal import Decimal

import pytest
from django.urls import get_resolver, reverse

from playground.access.passes import create_pass, pass_token
from playground.web import account_views

SEED = "gemini-3-pro-image-preview-official"


@pytest.fixture
def owner_with_a_pass(client, user, catalog):
    demo = create_pass(user, "Friday demo", [SEED], Decimal("5"), 24)
    client.force_login(user)
    return demo


def test_the_keys_page_with_a_live_pass_link_is_never_stored(client, owner_with_a_pass):
    response = client.get(reverse("keys"))
    assert pass_token(owner_with_a_pass) in response.content.decode()
    assert "no-store" in response["Cache-Control"]


def keys_page_routes():
    """Every route of the Keys & access page (all of account_views but the usage pages)."""
    return sorted(
        pattern.name
        for pattern in get_resolver().url_patterns[-1].url_patterns
        if getattr(pattern.callback, "__module__", "") == account_views.__name__
        and pattern.name not in ("usage", "usage-csv")
    )


def test_every_view_of_the_keys_page_is_never_stored(client, owner_with_a_pass, user):
    from playground.keys.services import issue_key

    key = issue_key(user, name="k").key
    args = {"key-action": [key.pk, "disable"], "pass-revoke": [owner_with_a_pass.pk]}
    routes = keys_page_routes()
    assert {"keys", "key-create", "webhook-secret-reveal", "pass-create", "pass-revoke"} <= set(routes)
    shown = []
    for name in routes:
        url = reverse(name, args=args.get(name, []))
        response = (
            client.get(url)
            if name == "keys"
            else client.post(url, {"name": "x"}, headers={"HX-Request": "true"})
        )
        assert response.status_code < 500, name
        if response.status_code == 200:  # a page or section was shown (a 404 shows nothing)
            shown.append(name)
            assert "no-store" in response.get("Cache-Control", ""), name
    assert len(shown) >= 8, shown
