#!/usr/bin/env python3
"""Runs one SQL statement on the stack's lake and prints its rows, one JSON object a line.

    query.py duckdb SQL    in DuckDB, with its httpfs and delta extensions loaded from
                           their wheels (no download) and a secret for the stack's S3:
                           delta_scan('s3://homestream/...'), read_parquet('s3://...')
    query.py trino SQL     in the stack's Trino, through its HTTP client protocol
                           (catalogs `delta` and `hive`)

Each row is an object keyed by column name. Numbers, booleans, strings and null stay
JSON's; dates, timestamps, decimals and the like are strings (DuckDB's values as Python
prints them, Trino's as its protocol sends them). On failure the engine's message goes
to stderr and the exit status is 1.

Runs under the lake venv's python ($HOMESTREAM_LAKE_PYTHON; DuckDB is only there). The
endpoints come from the environment, or else from the stack's env file
($HOMESTREAM_STATE/env, written by `tests/env/stack up`), as the Rust tests read them.
"""

import datetime
import decimal
import importlib.util
import json
import os
import sys
import urllib.error
import urllib.parse
import urllib.request
import uuid

TRINO_USER = "homestream"


def settings():
    """The process environment over the stack's env file."""
    state = os.environ.get("HOMESTREAM_STATE", os.path.expanduser("~/.local/state/homestream"))
    values = {}
    try:
        with open(os.path.join(state, "env")) as env_file:
            for line in env_file:
                name, sep, value = line.strip().partition("=")
                if sep and not name.startswith("#"):
                    values[name] = value
    except FileNotFoundError:
        pass
    values.update(os.environ)
    return values


def require(env, name):
    if not env.get(name):
        raise RuntimeError(f"{name} is not set (is the stack up? `tests/env/stack up` writes it)")
    return env[name]


def to_json(value):
    """Python values DuckDB returns, as JSON values."""
    if isinstance(value, (list, tuple)):
        return [to_json(item) for item in value]
    if isinstance(value, dict):
        return {str(key): to_json(item) for key, item in value.items()}
    if isinstance(value, (bytes, bytearray, memoryview)):
        return bytes(value).hex()
    if isinstance(value, (decimal.Decimal, datetime.date, datetime.time, datetime.timedelta, uuid.UUID)):
        return str(value)
    return value


def quote(text):
    return "'" + text.replace("'", "''") + "'"


def duckdb_rows(env, sql):
    import duckdb

    # The wheels put the extension files in DuckDB's own directory layout
    # (duckdb_ext/extensions/v1.4.4/linux_amd64/*.duckdb_extension): pointing
    # extension_directory there makes LOAD find them; never install from the network.
    extensions = os.path.join(importlib.util.find_spec("duckdb_ext").submodule_search_locations[0], "extensions")
    endpoint = urllib.parse.urlsplit(require(env, "HOMESTREAM_S3_ENDPOINT"))
    with duckdb.connect() as con:
        con.execute("SET autoinstall_known_extensions = false")
        con.execute(f"SET extension_directory = {quote(extensions)}")
        con.execute("LOAD httpfs")
        con.execute("LOAD delta")
        con.execute(
            "CREATE SECRET homestream (TYPE s3, "
            f"KEY_ID {quote(require(env, 'HOMESTREAM_S3_ACCESS_KEY_ID'))}, "
            f"SECRET {quote(require(env, 'HOMESTREAM_S3_SECRET_ACCESS_KEY'))}, "
            f"REGION {quote(require(env, 'HOMESTREAM_S3_REGION'))}, "
            f"ENDPOINT {quote(endpoint.netloc)}, URL_STYLE 'path', "
            f"USE_SSL {'true' if endpoint.scheme == 'https' else 'false'})"
        )
        cursor = con.execute(sql)
        if cursor.description is None:
            return
        names = [column[0] for column in cursor.description]
        for row in cursor.fetchall():
            yield dict(zip(names, (to_json(value) for value in row)))


def trino_rows(env, sql):
    base = require(env, "HOMESTREAM_TRINO")
    request = urllib.request.Request(
        f"{base}/v1/statement", data=sql.encode(), method="POST",
        headers={"X-Trino-User": TRINO_USER, "X-Trino-Source": "homestream-query"},
    )
    names = None
    while request is not None:
        try:
            with urllib.request.urlopen(request, timeout=300) as response:
                result = json.load(response)
        except urllib.error.HTTPError as error:
            raise RuntimeError(f"Trino answered {error.code}: {error.read()[:500].decode(errors='replace')}")
        if "error" in result:
            error = result["error"]
            raise RuntimeError(f"{error.get('errorName', 'error')}: {error.get('message')}")
        if names is None and "columns" in result:
            names = [column["name"] for column in result["columns"]]
        for row in result.get("data", []):
            yield dict(zip(names, row))
        # A query is done when the answer has no nextUri; until then, follow it.
        next_uri = result.get("nextUri")
        request = urllib.request.Request(next_uri, headers={"X-Trino-User": TRINO_USER}) if next_uri else None


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in ("duckdb", "trino"):
        print(__doc__, file=sys.stderr)
        return 2
    engine, sql = sys.argv[1], sys.argv[2]
    rows = duckdb_rows if engine == "duckdb" else trino_rows
    try:
        for row in rows(settings(), sql):
            print(json.dumps(row))
    except Exception as error:
        print(f"{engine}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
