from django.conf import settings
from django.shortcuts import resolve_url
from django.utils.cache import patch_vary_headers
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


class HtmxHistoryRestoreMiddleware:
    """Back and Forward: with no history cache, htmx asks the server for the page again, sending
    HX-Request *and* HX-History-Restore-Request, and puts the answer in place of the whole body. A
    view that answers htmx with a fragment (the task page answers with its status panel) must
    then answer with the full page: for such requests the views see no htmx at all."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        if request.META.get("HTTP_HX_HISTORY_RESTORE_REQUEST") == "true":
            request.META.pop("HTTP_HX_REQUEST", None)
            request.__dict__.pop("headers", None)  # `request.headers` is cached: read META again
        response = self.get_response(request)
        if "HX-Request" in response.get("Vary", ""):
            patch_vary_headers(response, ("HX-History-Restore-Request",))
        return response
