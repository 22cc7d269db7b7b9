#!/usr/bin/env python3
"""The few S3 requests the stack makes itself, signed with SigV4 (standard library only).

    s3.py probe                 ListBuckets answered: the server is up and takes the credentials
    s3.py ensure-bucket NAME    create the bucket unless it exists

The endpoint and credentials come from HOMESTREAM_S3_ENDPOINT (http://host:port),
HOMESTREAM_S3_REGION, HOMESTREAM_S3_ACCESS_KEY_ID and HOMESTREAM_S3_SECRET_ACCESS_KEY.
Exit 0 on success, 1 otherwise (the reason on stderr).
"""

import datetime
import hashlib
import hmac
import http.client
import os
import sys
import urllib.parse

EMPTY_SHA256 = hashlib.sha256(b"").hexdigest()


def request(method, path):
    """Sends a body-less request, path-style, and returns (status, body)."""
    endpoint = urllib.parse.urlsplit(os.environ["HOMESTREAM_S3_ENDPOINT"])
    region = os.environ["HOMESTREAM_S3_REGION"]
    key_id = os.environ["HOMESTREAM_S3_ACCESS_KEY_ID"]
    secret = os.environ["HOMESTREAM_S3_SECRET_ACCESS_KEY"]
    now = datetime.datetime.now(datetime.timezone.utc)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    headers = {"host": endpoint.netloc, "x-amz-content-sha256": EMPTY_SHA256, "x-amz-date": amz_date}
    signed_headers = ";".join(sorted(headers))
    canonical = "\n".join(
        [method, urllib.parse.quote(path), ""]
        + [f"{name}:{headers[name]}" for name in sorted(headers)]
        + ["", signed_headers, EMPTY_SHA256]
    )
    scope = f"{day}/{region}/s3/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()])
    key = ("AWS4" + secret).encode()
    for part in (day, region, "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    headers["authorization"] = (
        f"AWS4-HMAC-SHA256 Credential={key_id}/{scope}, SignedHeaders={signed_headers}, Signature={signature}"
    )
    connection = http.client.HTTPConnection(endpoint.hostname, endpoint.port, timeout=5)
    try:
        connection.request(method, path, headers=headers)
        response = connection.getresponse()
        return response.status, response.read()
    finally:
        connection.close()


def probe():
    status, body = request("GET", "/")
    if status != 200:
        raise RuntimeError(f"ListBuckets answered {status}: {body[:300]!r}")


def ensure_bucket(name):
    status, _ = request("HEAD", f"/{name}")
    if status == 200:
        return
    if status != 404:
        raise RuntimeError(f"HeadBucket {name} answered {status}")
    status, body = request("PUT", f"/{name}")
    # A concurrent `stack up` may have created it between the two requests.
    if status != 200 and b"BucketAlreadyOwnedByYou" not in body:
        raise RuntimeError(f"CreateBucket {name} answered {status}: {body[:300]!r}")


def main():
    try:
        if sys.argv[1:] == ["probe"]:
            probe()
        elif len(sys.argv) == 3 and sys.argv[1] == "ensure-bucket":
            ensure_bucket(sys.argv[2])
        else:
            print(__doc__, file=sys.stderr)
            return 2
    except Exception as error:
        print(f"s3 {os.environ.get('HOMESTREAM_S3_ENDPOINT')}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
