"""Where inputs and outputs are kept: the local folder, or an S3-compatible bucket.

Every file goes through Django's default storage, so this module only decides which one it is
(`storages_setting`, read by settings.py from PLAYGROUND_STORAGE_URL), what counts as the store
being unreachable (`STORE_ERRORS`), and how a stored file reaches a client (`serve_stored`).

Hosts of one installation share nothing but the database and the store: a worker saves a task's
outputs on one host, and whichever web host a request lands on serves them. So several hosts need
a bucket; the local folder is for one host (or a folder every host mounts).
"""

from urllib.parse import SplitResult, parse_qs, unquote, urlsplit

from botocore.exceptions import BotoCoreError, ClientError
from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import default_storage
from django.http import FileResponse, HttpResponse, HttpResponseRedirect

LOCAL_STORAGE = {"BACKEND": "django.core.files.storage.FileSystemStorage"}

# What a bucket that does not answer raises: it refused the connection, timed out or answered 5xx
# (botocore has retried it by then). With the local folder: a full or missing disk too.
BUCKET_ERRORS = (BotoCoreError, ClientError)
STORE_ERRORS = (OSError, *BUCKET_ERRORS)

# A file read from the bucket is spooled to a temporary file past this size, not held in memory
# (django-storages' default keeps the whole of it in memory: a 500 MB video).
SPOOL_BYTES = 8 * 1024 * 1024


def url_options(parts: SplitResult) -> dict[str, str]:
    """The options of PLAYGROUND_STORAGE_URL's query string, the last one given of each."""
    return {name: values[-1] for name, values in parse_qs(parts.query).items()}


def storages_setting(url: str) -> dict:
    """The default storage for PLAYGROUND_STORAGE_URL: empty for the local folder (MEDIA_ROOT), or
    `s3://[KEY:SECRET@]bucket[/prefix][?endpoint=URL&region=NAME&addressing=path|virtual]`.

    Without KEY:SECRET the bucket's credentials come from where boto3 looks for them (the
    AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY variables, ~/.aws, an instance role), so none need be
    in the URL. Files are never overwritten (a name taken gets a suffix, as on disk): an attempt
    presumed dead that still saves must not replace the file of the attempt that took over.
    """
    if not url:
        return LOCAL_STORAGE
    parts = urlsplit(url)
    if parts.scheme != "s3" or not parts.hostname:
        raise ImproperlyConfigured(
            "PLAYGROUND_STORAGE_URL: give s3://bucket[/prefix]?endpoint=https://…&region=…, or leave "
            "it unset for the local folder."
        )
    if ":" in parts.netloc.rpartition("@")[2]:
        # A bucket has no port: a secret with a bare / ? or # in it ended the address there, and
        # the rest of it would be read as the bucket's prefix (in every file's URL). Never echoed.
        raise ImproperlyConfigured(
            "PLAYGROUND_STORAGE_URL: percent-encode / ? # in the key and secret (%2F %3F %23)."
        )
    query = url_options(parts)
    unknown = set(query) - {"endpoint", "region", "addressing"}
    if unknown:
        raise ImproperlyConfigured(f"PLAYGROUND_STORAGE_URL: unknown option {sorted(unknown)[0]!r}.")
    if "endpoint" in query:
        endpoint = urlsplit(query["endpoint"])
        if endpoint.scheme not in ("http", "https") or not endpoint.hostname or "@" in endpoint.netloc:
            # Its origin goes into every page's Content-Security-Policy (`bucket_origins`).
            raise ImproperlyConfigured(
                "PLAYGROUND_STORAGE_URL: give the endpoint as http(s)://host[:port], without credentials."
            )
    from botocore.config import Config

    options = {
        "bucket_name": parts.hostname,
        "location": parts.path.strip("/"),
        "endpoint_url": query.get("endpoint"),
        "region_name": query.get("region"),
        "file_overwrite": False,
        "default_acl": None,  # the bucket's own policy: private unless its owner made it public
        "querystring_auth": True,
        "max_memory_size": SPOOL_BYTES,
        # The client's whole configuration (django-storages then ignores its own addressing and
        # signature options). A bucket that does not answer must not hold a request (or a worker)
        # for minutes: a few quick tries here, then the caller's own (`jobs.save_output`).
        "client_config": Config(
            s3={"addressing_style": query.get("addressing")},
            signature_version="s3v4",
            connect_timeout=3,
            read_timeout=30,
            retries={"max_attempts": 2, "mode": "standard"},
        ),
    }
    if parts.username:
        options["access_key"] = unquote(parts.username)
        options["secret_key"] = unquote(parts.password or "")
    return {"BACKEND": "storages.backends.s3.S3Storage", "OPTIONS": options}


def bucket_origins(url: str) -> list[str]:
    """Where the bucket of PLAYGROUND_STORAGE_URL serves presigned URLs from: the pages' Content
    Security Policy lets images and videos load from there (a browser checks where a redirect
    leads). The endpoint's origin (with the bucket as a subdomain too, for virtual addressing);
    without an endpoint, AWS's S3 hosts."""
    parts = urlsplit(url)
    endpoint = url_options(parts).get("endpoint")
    if not endpoint:
        return ["https://*.amazonaws.com"]
    origin = urlsplit(endpoint)
    return [f"{origin.scheme}://{origin.netloc}", f"{origin.scheme}://{parts.hostname}.{origin.netloc}"]


def serve_stored(
    path: str,
    content_type: str,
    filename: str,
    *,
    cache: str | None,
    presign: bool = True,
    attachment: bool = False,
) -> HttpResponse:
    """A stored file as a response: streamed through this server, or with PLAYGROUND_S3_PRESIGNED a
    redirect to the bucket's own presigned URL (short-lived, naming the type and file name), so the
    bytes go straight from the bucket. `cache`: the Cache-Control of the streamed file. `presign`
    False: always streamed, for a file whose access may end at any moment (a share page's: a
    presigned URL would outlive an unshare by its lifetime). `attachment`: to be saved, not shown
    (a browser ignores a link's `download` attribute once a redirect leads to another origin)."""
    disposition = f'{"attachment" if attachment else "inline"}; filename="{filename}"'
    if presign and settings.PLAYGROUND_S3_PRESIGNED:
        ttl = settings.PLAYGROUND_S3_PRESIGNED_TTL
        parameters = {"ResponseContentType": content_type, "ResponseContentDisposition": disposition}
        response = HttpResponseRedirect(default_storage.url(path, parameters=parameters, expire=ttl))
        # The redirect may be reused while the URL it names is valid, with a margin.
        response["Cache-Control"] = f"private, max-age={ttl // 2}"
        return response
    response = FileResponse(default_storage.open(path, "rb"), content_type=content_type)
    response["Content-Disposition"] = disposition
    if cache:
        response["Cache-Control"] = cache
    return response
