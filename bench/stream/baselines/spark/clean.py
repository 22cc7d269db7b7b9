"""The cleaning program (runtime/programs/clean_listing.vrl, whose SQL twin is
clean_listing.sql) in Spark SQL built-in functions only, as a Spark team would write it:
every step a Catalyst expression, so the job runs in whole-stage generated JVM code
with no Python in the data path.

`clean(raw)` takes a DataFrame with the string column `json` (a Kafka value) and returns
the cleaned columns in the program's output order; a record without an id is dropped
(homestream sends it to the dead-letter topic). The scalar fields are read as strings,
as clean_listing.sql declares them: Spark keeps a JSON number's text, and a value that
casts to a double is a number. What differs from VRL, on records the benchmark never
makes: regexes are Java's (`\\s` and `\\b` ASCII, Rust's Unicode) and `parse_url` is
java.net.URI's (a host not lower-cased or punycoded).
"""

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F
from pyspark.sql.types import IntegerType, LongType, StringType, StructField, StructType

# The program's output fields, in its order: the Kafka value's and the table's columns.
OUTPUT = [
    "listing_key",
    "source",
    "listing_id",
    "url",
    "currency",
    "price_label",
    "monthly_price_minor",
    "beds",
    "baths",
    "address",
    "postcode",
    "outward_code",
    "scraped_at",
]

# Only the fields the program reads, as clean_listing.sql's columns.
RAW = StructType(
    [StructField(name, StringType()) for name in ["id", "url", "price", "beds", "baths", "address", "postcode"]]
    + [
        StructField(
            "_meta",
            StructType([StructField(name, StringType()) for name in ["sourceUrl", "job", "scrapedAt"]]),
        )
    ]
)

# VRL's strip_whitespace for the text the records carry.
WHITESPACE = " \t\n\r\f\u000b"
LABEL = r"([£$€]\s*[0-9].*|[0-9][0-9,.]*\s*[a-zA-Z/ ]*)$"
AMOUNT = r"([0-9][0-9,]*)(?:\.([0-9]{1,2}))?"
WEEKLY = r"\b(pw|p/w|per week|weekly)\b"
YEARLY = r"\b(pa|p/a|per annum|per year|yearly|annually)\b"
UK = r"(?:^|[\s,])([A-Z]{1,2}[0-9][A-Z0-9]?)(?:\s+([0-9][A-Z]{2}))?$"


def strip(column: Column) -> Column:
    return F.btrim(column, F.lit(WHITESPACE))


def null(sql_type: str) -> Column:
    return F.lit(None).cast(sql_type)


def count(text: Column) -> Column:
    """Beds or baths: a whole non-negative number as it is, "Studio" 0, else the text's
    first digits, 0 when it has none (VRL's to_int of null)."""
    number = text.cast("double")
    digits = F.regexp_extract(text, "([0-9]+)", 1)
    return (
        F.when(text.isNull(), null("bigint"))
        .when(number.isNotNull() & (number >= 0) & (number < 1e15) & (F.floor(number) == number), number.cast("bigint"))
        .when(F.lower(text).contains("studio"), F.lit(0).cast("bigint"))
        .when(digits == "", F.lit(0).cast("bigint"))
        .otherwise(digits.cast("bigint"))
    )


def clean(raw: DataFrame) -> DataFrame:
    """The cleaned records of `raw` (its column `json`)."""
    records = raw.select(F.from_json(F.col("json"), RAW).alias("r")).select("r.*")

    # The page's host, the id, the price as a number, and the text fields normalised.
    fields = records.select(
        F.coalesce(F.parse_url(F.coalesce(F.col("_meta.sourceUrl"), F.lit("")), F.lit("HOST")), F.lit("")).alias(
            "host"
        ),
        F.col("_meta.job").alias("job"),
        F.col("_meta.scrapedAt").alias("scraped_at"),
        strip(F.coalesce(F.col("id"), F.lit(""))).alias("listing_id"),
        F.col("url").alias("page_url"),
        F.col("price"),
        F.col("price").cast("double").alias("price_number"),
        count(F.col("beds")).alias("beds"),
        count(F.col("baths")).alias("baths"),
        strip(
            F.replace(
                F.regexp_replace(F.replace(F.coalesce(F.col("address"), F.lit("")), F.lit("\\n"), F.lit(" ")), r"\s+", " "),
                F.lit(" ,"),
                F.lit(","),
            )
        ).alias("one_line_address"),
        F.when(F.col("postcode").isNull(), null("string")).otherwise(strip(F.col("postcode"))).alias("postcode_field"),
    ).where(F.col("listing_id") != "")

    named = fields.select(
        "*",
        F.lower(F.regexp_replace(F.col("host"), r"^www\.", "")).alias("portal_host"),
        F.when(
            F.col("price").isNotNull() & F.col("price_number").isNull(),
            strip(F.regexp_replace(F.col("price"), r"\s+", " ")),
        ).alias("price_text"),
        F.when(F.col("one_line_address") == "", null("string")).otherwise(F.col("one_line_address")).alias("address"),
        F.regexp_extract(F.upper(F.col("one_line_address")), UK, 0).alias("uk"),
    )

    # The portal from the host, else the job's name; the price label; the UK postcode.
    no_portal = (
        (F.col("portal_host") == "")
        | (F.col("portal_host") == "localhost")
        | F.col("portal_host").rlike(r"^[0-9.]+$|^\[")
    )
    label = F.regexp_extract(F.col("price_text"), LABEL, 1)
    labelled = named.select(
        "*",
        F.when(
            no_portal,
            F.lower(F.element_at(F.split(F.coalesce(F.col("job"), F.lit("unknown")), "/"), -1)),
        )
        .otherwise(F.substring_index(F.col("portal_host"), ".", 1))
        .alias("source"),
        F.when(label == "", F.col("price_text")).otherwise(label).alias("label"),
        F.when(F.col("uk") != "", F.regexp_extract(F.col("uk"), UK, 1)).alias("outward_code"),
        F.when(F.col("uk") != "", F.regexp_extract(F.col("uk"), UK, 2)).alias("inward_code"),
    )

    # A label's amount in minor units, a month's worth.
    amounts = labelled.select(
        "*",
        F.when(F.col("label").isNotNull(), F.regexp_extract(F.col("label"), AMOUNT, 0)).alias("amount"),
    )
    whole = F.translate(F.regexp_extract(F.col("amount"), AMOUNT, 1), ",", "")
    cents = F.regexp_extract(F.col("amount"), AMOUNT, 2)
    minor = whole.cast("bigint").cast("double") * 100.0 + F.when(cents != "", cents.cast("double")).otherwise(0.0)
    frequency = F.lower(F.col("label"))
    monthly = (
        F.when(frequency.rlike(WEEKLY), minor * 52.0 / 12.0).when(frequency.rlike(YEARLY), minor / 12.0).otherwise(minor)
    )

    price = F.col("price_number")
    # VRL's to_string of a number: a whole one without ".0".
    number_label = F.when((F.floor(price) == price) & (F.abs(price) < 1e15), price.cast("bigint").cast("string")).otherwise(
        price.cast("string")
    )
    text = F.col("price_text")
    return amounts.select(
        F.concat(F.col("source"), F.lit(":"), F.col("listing_id")).alias("listing_key"),
        F.col("source"),
        F.col("listing_id"),
        F.when(
            F.col("page_url").startswith("/") & (F.col("host") != ""),
            F.concat(F.lit("https://"), F.col("host"), F.col("page_url")),
        )
        .otherwise(F.col("page_url"))
        .alias("url"),
        F.when(price.isNotNull(), F.lit("USD"))
        .when(text.contains("£"), F.lit("GBP"))
        .when(text.contains("€"), F.lit("EUR"))
        .when(text.contains("$"), F.lit("USD"))
        .alias("currency"),
        F.when(price.isNotNull(), number_label).otherwise(F.col("label")).alias("price_label"),
        F.when(price.isNotNull(), F.round(price * 100.0).cast("bigint"))
        .when(F.col("amount") != "", F.round(monthly).cast("bigint"))
        .alias("monthly_price_minor"),
        F.col("beds"),
        F.col("baths"),
        F.col("address"),
        F.when(
            F.col("postcode_field").isNull() & (F.col("inward_code") != ""),
            F.concat(F.col("outward_code"), F.lit(" "), F.col("inward_code")),
        )
        .otherwise(F.col("postcode_field"))
        .alias("postcode"),
        F.col("outward_code"),
        F.col("scraped_at"),
    )


def to_kafka(cleaned: DataFrame) -> DataFrame:
    """Kafka records as the transform writes them: key listing_key, value the JSON object
    with its nulls."""
    return cleaned.select(
        F.col("listing_key").alias("key"),
        F.to_json(F.struct(*[F.col(name) for name in OUTPUT]), {"ignoreNullFields": "false"}).alias("value"),
    )


# The cleaned records as the sink's table types them (bench-stream's COLUMNS).
CLEANED = StructType(
    [
        StructField(
            name,
            LongType() if name == "monthly_price_minor" else IntegerType() if name in ("beds", "baths") else StringType(),
        )
        for name in OUTPUT
    ]
)


def parse_cleaned(raw: DataFrame) -> DataFrame:
    """The rows of the sink's table from the cleaned records of `raw` (its column `json`)."""
    records = raw.select(F.from_json(F.col("json"), CLEANED).alias("r")).select("r.*")
    return records.select(*[F.col(name).cast("timestamp") if name == "scraped_at" else F.col(name) for name in OUTPUT])
