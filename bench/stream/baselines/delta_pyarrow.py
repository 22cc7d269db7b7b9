#!/usr/bin/env python3
"""The DeltaSink's baseline: what a Python team writes to land a Kafka topic in a Delta
table. confluent-kafka consumes, json.loads each record, pyarrow builds the columns with
the same types as the DeltaSink's table, and deltalake's write_deltalake appends each
batch of FLUSH_ROWS rows, or of what came within FLUSH_SECONDS of its first record,
as one commit (partitioned by scraped_date), the DeltaSink's flush policy; offsets are
committed to Kafka after each append (at least once: no txn per partition).

    delta_pyarrow.py BOOTSTRAP TOPIC TABLE_URI RECORDS FLUSH_ROWS FLUSH_SECONDS

Storage options come from the environment (AWS_ENDPOINT_URL, AWS_ACCESS_KEY_ID, ...).
Prints one JSON line as bench-stream's children do: records, wall and CPU seconds (from
the first record), peak RSS, and p50/p99 of the append-and-commit time.
"""

import json
import os
import resource
import sys
import time
import uuid

import pyarrow as pa
import pyarrow.compute as pc
from confluent_kafka import Consumer
from deltalake import write_deltalake

# The DeltaSink's columns over the cleaned records: (column, field, Arrow type).
COLUMNS = [
    ("listing_key", "listing_key", pa.string()),
    ("source", "source", pa.string()),
    ("listing_id", "listing_id", pa.string()),
    ("url", "url", pa.string()),
    ("currency", "currency", pa.string()),
    ("price_label", "price_label", pa.string()),
    ("monthly_price_minor", "monthly_price_minor", pa.int64()),
    ("beds", "beds", pa.int32()),
    ("baths", "baths", pa.int32()),
    ("address", "address", pa.string()),
    ("postcode", "postcode", pa.string()),
    ("outward_code", "outward_code", pa.string()),
]


def cpu_seconds():
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def to_table(records):
    arrays = [pa.array([r.get(field) for r in records], type=kind) for _, field, kind in COLUMNS]
    scraped = pa.array([r.get("scraped_at") for r in records], type=pa.string())
    scraped_at = pc.cast(scraped, pa.timestamp("us", tz="UTC"))
    names = [name for name, _, _ in COLUMNS] + ["scraped_at", "scraped_date"]
    return pa.Table.from_arrays(arrays + [scraped_at, pc.cast(scraped_at, pa.date32())], names=names)


def main():
    bootstrap, topic, table_uri, records, flush_rows, flush_seconds = sys.argv[1:7]
    records, flush_rows, flush_seconds = int(records), int(flush_rows), float(flush_seconds)
    storage = {key: value for key, value in os.environ.items() if key.startswith("AWS_")}
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": f"bench-pyarrow-{uuid.uuid4().hex[:8]}",
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    })
    consumer.subscribe([topic])
    done, batch, commits = 0, [], []
    started = cpu_before = oldest = None
    while done < records:
        for message in consumer.consume(num_messages=10_000, timeout=1.0):
            if message.error():
                continue
            if started is None:
                started, cpu_before = time.monotonic(), cpu_seconds()
            if oldest is None:
                oldest = time.monotonic()
            batch.append(json.loads(message.value()))
        if batch and (len(batch) >= flush_rows or time.monotonic() - oldest >= flush_seconds):
            began = time.monotonic()
            write_deltalake(table_uri, to_table(batch), mode="append",
                            partition_by=["scraped_date"], storage_options=storage)
            consumer.commit(asynchronous=False)
            commits.append(time.monotonic() - began)
            done += len(batch)
            batch, oldest = [], None
    wall = time.monotonic() - started
    cpu = cpu_seconds() - cpu_before
    commits.sort()
    quantile = lambda q: commits[min(len(commits) - 1, int(q * len(commits)))] * 1e3
    print(json.dumps({
        "records": done, "wall_seconds": wall, "cpu_seconds": cpu,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "p50_ms": quantile(0.5), "p99_ms": quantile(0.99),
    }))
    consumer.close()


if __name__ == "__main__":
    main()
