"""Someone guesses carol's password from one address, behind the trusted proxy: they are stopped
there, while carol signs in from elsewhere and a colleague of the guesser signs in from the same
address, in the same browser window that was refused."""

import pytest
from django.contrib.auth import get_user_model

from .conftest import PASSWORD, sign_in

pytestmark = [pytest.mark.e2e, pytest.mark.django_db(transaction=True)]


def at(page, address):
    """The page's requests come through the proxy on 127.0.0.1 for a client at `address`."""
    page.context.set_extra_http_headers({"X-Forwarded-For": address})
    return page


def test_a_guesser_is_stopped_at_their_address_and_nobody_else_is(new_page, person, settings):
    settings.PLAYGROUND_TRUSTED_PROXIES = ["127.0.0.1"]
    dave = get_user_model().objects.create_user("dave", password="dave-password-1")
    guesser = at(new_page(width=360, height=740), "198.51.100.66")
    guesser.goto("/accounts/login/")
    for attempt in range(6):
        guesser.fill("#id_username", "carol")
        guesser.fill("#id_password", f"guess-{attempt}")
        guesser.click("button[type=submit]")
        guesser.locator(".alert").wait_for()
    alert = guesser.locator(".alert").inner_text()
    assert "Too many sign-in attempts. Try again in 15 minutes." in alert
    assert guesser.evaluate("document.documentElement.scrollWidth <= window.innerWidth")

    # The right password from there is refused too, and says the same.
    guesser.fill("#id_username", "carol")
    guesser.fill("#id_password", PASSWORD)
    guesser.click("button[type=submit]")
    guesser.locator(".alert", has_text="Too many sign-in attempts").wait_for()
    assert "/accounts/login/" in guesser.url

    carol = at(new_page(), "203.0.113.10")
    sign_in(carol, person)  # carol, from her own address, as if nothing happened

    guesser.fill("#id_username", "dave")  # a colleague at the guesser's address, same window
    guesser.fill("#id_password", "dave-password-1")
    guesser.click("button[type=submit]")
    guesser.wait_for_url("**/play/**")
    assert dave.username in guesser.content()
