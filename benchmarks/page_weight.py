"""Page weight of the playground page: the bytes a first visit transfers.

    .venv/bin/python -m benchmarks.page_weight

Runs `collectstatic` (whitenoise then serves its pre-compressed files, as in production), serves the
app with production settings, signs in and fetches the seed model's playground page and every
stylesheet, script and icon it links, the way a browser asks for them (`Accept-Encoding: gzip,
deflate, br`, then gzip only, then none). Result images are not part of the page and not counted.
Bytes are what travels: the body as sent plus the response headers.
"""

import argparse
import re
from urllib.parse import urljoin

import httpx

from . import harness

ASSET = re.compile(r'<(?:link[^>]+href|script[^>]+src)="(?P<url>/static/[^"]+)"')
ENCODINGS = {"br": "gzip, deflate, br", "gzip": "gzip, deflate", "none": "identity"}
GOAL = 60 * 1024


def transfer(client: httpx.Client, url: str, accept: str) -> tuple[int, int, str]:
    """(body bytes as sent, header bytes, content-encoding) of one GET."""
    with client.stream("GET", url, headers={"Accept-Encoding": accept}) as response:
        response.raise_for_status()
        body = sum(len(chunk) for chunk in response.iter_raw())
        headers = sum(len(name) + len(value) + 4 for name, value in response.headers.raw) + 17
        return body, headers, response.headers.get("Content-Encoding", "-")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.parse_args()
    harness.configure(static=True)
    _, _, session = harness.make_account()
    page = f"/play/{harness.SEED}"
    with harness.serving(task_workers=0) as server, httpx.Client(cookies={"sessionid": session}) as client:
        base = server.url
        html = client.get(urljoin(base, page)).text
        assets = ["favicon" if "favicon" in url else url for url in ASSET.findall(html)]
        urls = [page, *ASSET.findall(html)]
        rows, totals = [], dict.fromkeys(ENCODINGS, 0)
        for url in urls:
            row = [url if len(url) < 60 else url[:57] + "…"]
            for name, accept in ENCODINGS.items():
                body, headers, encoding = transfer(client, urljoin(base, url), accept)
                totals[name] += body + headers
                row.append(f"{body:,} + {headers} ({encoding})")
            rows.append(row)
    rows.append(["total, headers included", *(f"{totals[name]:,} B" for name in ENCODINGS)])
    print(f"\nPage weight of {page} (first visit; {len(assets)} linked files)")
    print(harness.table(rows, ["resource", *(f"Accept-Encoding {n}: body + headers" for n in ENCODINGS)]))
    best = min(totals["br"], totals["gzip"])
    verdict = "met" if best <= GOAL else "NOT met"
    print(f"\nBest transfer {best / 1024:.1f} KB against the 60 KB goal: {verdict}.")


if __name__ == "__main__":
    main()
