from django.conf import settings
from django.shortcuts import resolve_url
from django_htmx.http import HttpResponseClientRedirect


class HtmxSignInRedirectMiddleware:
    """An htmx request that lost its session (signed out in another tab, expired) is sent to the
    sign-in page as a whole-page navigation (HX-Redirect), instead of htmx following the redirect
    and swapping the sign-in form into a fragment of the page."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if (
            getattr(request, "htmx", False)
            and response.status_code in (301, 302)
            and response["Location"].startswith(resolve_url(settings.LOGIN_URL))
        ):
            return HttpResponseClientRedirect(response["Location"])
        return response
