"""The cleaning program (runtime/programs/clean_listing.vrl) in plain Python, for a Spark
job that runs it as a Python UDF: the way a team that knows Python rather than Spark SQL
writes it. Each record goes from the JVM to a Python worker and back.

`clean_record(payload)` returns the Kafka key and the cleaned record as JSON text, or
None for a record without an id or one that is not JSON (homestream sends those to the
dead-letter topic).
"""

import json
import math
import re
from urllib.parse import urlsplit

SPACES = re.compile(r"\s+")
LABEL = re.compile(r"([£$€]\s*[0-9].*|[0-9][0-9,.]*\s*[a-zA-Z/ ]*)$")
AMOUNT = re.compile(r"([0-9][0-9,]*)(?:\.([0-9]{1,2}))?")
WEEKLY = re.compile(r"\b(pw|p/w|per week|weekly)\b")
YEARLY = re.compile(r"\b(pa|p/a|per annum|per year|yearly|annually)\b")
UK = re.compile(r"(?:^|[\s,])([A-Z]{1,2}[0-9][A-Z0-9]?)(?:\s+([0-9][A-Z]{2}))?$")
NO_PORTAL = re.compile(r"^[0-9.]+$|^\[")
DIGITS = re.compile(r"[0-9]+")


def number_text(value):
    """VRL's to_string of a number: a whole one without ".0"."""
    if isinstance(value, int):
        return str(value)
    if value == math.floor(value) and abs(value) < 1e16:
        return str(int(value))
    return repr(value)


def text(value):
    """VRL's to_string: null is "", a number its text; None for what it refuses."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return number_text(value)
    return None


def rounded(value):
    """VRL's round: halves away from zero."""
    return int(math.floor(value + 0.5)) if value >= 0 else -int(math.floor(-value + 0.5))


def count(value):
    """Beds or baths: a whole non-negative number as it is, "Studio" 0, else the text's
    first digits, 0 when it has none."""
    if value is None:
        return None
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if 0 <= value < 1e15 and math.floor(value) == value:
            return int(value)
    words = text(value) or ""
    if "studio" in words.lower():
        return 0
    digits = DIGITS.search(words)
    return int(digits.group(0)) if digits else 0


def host_of(page_url):
    if not page_url:
        return ""
    try:
        return urlsplit(page_url).hostname or ""
    except ValueError:
        return ""


def price_fields(price):
    """(currency, label, monthly amount in minor units) of a price."""
    if isinstance(price, str):
        words = SPACES.sub(" ", price).strip()
        found = LABEL.search(words)
        label = found.group(1) if found else words
        currency = "GBP" if "£" in words else "EUR" if "€" in words else "USD" if "$" in words else None
        amount = AMOUNT.search(label)
        if amount is None:
            return currency, label, None
        minor = float(int(amount.group(1).replace(",", ""))) * 100.0
        if amount.group(2) is not None:
            minor += float(int(amount.group(2)))
        if WEEKLY.search(label.lower()):
            minor = minor * 52.0 / 12.0
        elif YEARLY.search(label.lower()):
            minor = minor / 12.0
        return currency, label, rounded(minor)
    if isinstance(price, (int, float)) and not isinstance(price, bool):
        return "USD", number_text(price), rounded(float(price) * 100.0)
    return None, None, None


def clean(record):
    """The cleaned record and its key, or None without an id."""
    meta = record.get("_meta") if isinstance(record.get("_meta"), dict) else {}
    page_url = meta.get("sourceUrl") if isinstance(meta.get("sourceUrl"), str) else ""
    host = host_of(page_url)
    source = re.sub(r"^www\.", "", host).lower()
    if source in ("", "localhost") or NO_PORTAL.search(source):
        job = meta.get("job") if isinstance(meta.get("job"), str) else "unknown"
        source = job.split("/")[-1].lower()
    else:
        source = source.split(".", 1)[0]

    listing_id = (text(record.get("id")) or "").strip()
    if listing_id == "":
        return None
    currency, price_label, monthly = price_fields(record.get("price"))

    address = record.get("address") if isinstance(record.get("address"), str) else ""
    address = SPACES.sub(" ", address.replace("\\n", " ")).replace(" ,", ",").strip() or None
    postcode = record.get("postcode")
    postcode = None if postcode is None else (text(postcode) or "").strip()
    outward_code = None
    uk = UK.search((address or "").upper())
    if uk:
        outward_code = uk.group(1)
        if postcode is None and uk.group(2) is not None:
            postcode = f"{outward_code} {uk.group(2)}"

    url = record.get("url") if isinstance(record.get("url"), str) else None
    if url is not None and url.startswith("/") and host != "":
        url = f"https://{host}{url}"
    key = f"{source}:{listing_id}"
    return key, {
        "listing_key": key,
        "source": source,
        "listing_id": listing_id,
        "url": url,
        "currency": currency,
        "price_label": price_label,
        "monthly_price_minor": monthly,
        "beds": count(record.get("beds")),
        "baths": count(record.get("baths")),
        "address": address,
        "postcode": postcode,
        "outward_code": outward_code,
        "scraped_at": meta.get("scrapedAt") if isinstance(meta.get("scrapedAt"), str) else None,
    }


def clean_record(payload):
    """(key, JSON value) of a Kafka value, or None to drop it."""
    try:
        cleaned = clean(json.loads(payload))
    except (ValueError, AttributeError):
        return None
    if cleaned is None:
        return None
    key, value = cleaned
    return key, json.dumps(value, ensure_ascii=False, separators=(",", ":"))
