"""The MindVideo key in the browser: tested before it is stored, never shown again."""

import pytest
from django.urls import reverse

from playground.keys.credentials import upstream_key_for
from playground.keys.models import UpstreamCredential

from .upstream import FakeUpstream


@pytest.fixture
def platform(settings):
    fake = FakeUpstream()
    settings.MINDVIDEO_BASE_URL = fake.base_url
    yield fake
    fake.close()


@pytest.fixture
def signed_in(client, user, catalog):
    client.force_login(user)
    return client


def save(client, secret, label="main"):
    return client.post(
        reverse("upstream-save"), {"secret": secret, "label": label}, headers={"HX-Request": "true"}
    )


def test_a_key_the_platform_accepts_is_stored_encrypted_and_shown_by_its_last_4(signed_in, user, platform):
    html = save(signed_in, platform.key).content.decode()
    assert "Accepted by the platform." in html
    assert platform.key not in html and f"…{platform.key[-4:]}" in html
    assert upstream_key_for(user.pk) == platform.key
    assert platform.key not in UpstreamCredential.objects.get(user=user).secret_encrypted
    assert platform.key not in signed_in.get(reverse("keys")).content.decode()


def test_a_rejected_key_is_not_stored_and_the_old_one_keeps_working(signed_in, user, platform):
    save(signed_in, platform.key)
    html = save(signed_in, "mv_live_typo").content.decode()
    assert "Rejected by the platform" in html
    assert "mv_live_typo" not in html
    assert upstream_key_for(user.pk) == platform.key


def test_an_unreachable_platform_stores_nothing_and_says_so(signed_in, user, settings):
    settings.MINDVIDEO_BASE_URL = "http://127.0.0.1:9"  # nothing listens there
    html = save(signed_in, "mv_live_anything").content.decode()
    assert "Could not reach the MindVideo platform, so the key was not checked." in html
    assert not UpstreamCredential.objects.exists()


def test_test_connection_marks_a_failing_key_and_clears_it_when_it_works(signed_in, user, platform):
    save(signed_in, platform.key)
    platform.key = "mv_live_rotated_upstream"  # the platform no longer accepts ours
    html = signed_in.post(reverse("upstream-test"), headers={"HX-Request": "true"}).content.decode()
    assert "Rejected by the platform" in html and "failing" in html
    assert UpstreamCredential.objects.get(user=user).failing_since is not None
    html = save(signed_in, "mv_live_rotated_upstream").content.decode()
    assert "working" in html


def test_delete_removes_the_key(signed_in, user, platform):
    save(signed_in, platform.key)
    signed_in.post(reverse("upstream-delete"))
    assert not UpstreamCredential.objects.filter(user=user).exists()


def test_the_playground_warns_when_a_mindvideo_model_has_no_working_key(signed_in, settings):
    settings.PLAYGROUND_ENGINE = "mindvideo"
    settings.MINDVIDEO_API_KEY = ""
    html = signed_in.get(reverse("play", args=["gpt-image-2"])).content.decode()
    assert "Runs on the <strong>mindvideo</strong> engine" in html
    assert "you have no working MindVideo key" in html
    settings.PLAYGROUND_ENGINE = "local"
    assert (
        "no working MindVideo key"
        not in signed_in.get(reverse("play", args=["gpt-image-2"])).content.decode()
    )
