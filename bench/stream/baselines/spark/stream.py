#!/usr/bin/env python3
"""One Spark Structured Streaming job of bench-stream's Spark baseline, over a Kafka
topic that holds RECORDS records:

    stream.py JOB JARS_DIR BOOTSTRAP INPUT RECORDS CHECKPOINT_DIR OUTPUT

JOB is `transform` (the cleaning program in Spark SQL built-ins, clean.py; OUTPUT is a
topic), `transform-udf` (the same as a Python UDF, clean_udf.py; OUTPUT is a topic) or
`sink` (cleaned records into Cassandra; OUTPUT is `host:port/keyspace`, whose table
`listings` exists). JARS_DIR holds the connectors setup.sh resolved.

Spark runs as its users run it on one machine: `local[*]` (driver and executor in one
JVM on every core), default memory, trigger availableNow (the backlog in one
micro-batch: its fastest here). Its Kafka producer batches as homestream's does
(linger.ms 5, librdkafka's 1 MB batch.size; Java's defaults are 0 and 16 KiB) and is
at least once (homestream's transform is exactly once). The sink writes as homestream's
sink does: consistency ONE, 64 writes in flight over the two tasks, unlogged batches of
at most 10 rows of one replica set.

Prints one JSON line: the records read and the throughput window, from the start of the
first micro-batch that read records to the end of the last (StreamingQueryProgress; the
JVM's start, the session and the query's planning are outside it), in seconds since the
epoch. bench-stream measures CPU, memory and the time to the first output from outside.
"""

import glob
import json
import os
import sys
from datetime import datetime, timezone

from pyspark.sql import SparkSession
from pyspark.sql import functions as F
from pyspark.sql.types import StringType, StructField, StructType

import clean

HERE = os.path.dirname(os.path.abspath(__file__))
# The sink's 64 writes in flight, over local[*]'s two concurrent tasks on this machine.
WRITES_IN_FLIGHT_PER_TASK = 32


def session(job, jars, contact_point):
    builder = (
        SparkSession.builder.master("local[*]")
        .appName(f"bench-stream-{job}")
        .config("spark.jars", ",".join(sorted(glob.glob(os.path.join(jars, "*.jar")))))
        .config("spark.ui.showConsoleProgress", "false")
    )
    if contact_point is not None:
        host, port = contact_point.rsplit(":", 1)
        builder = (
            builder.config("spark.cassandra.connection.host", host)
            .config("spark.cassandra.connection.port", port)
            .config("spark.cassandra.output.consistency.level", "ONE")
            .config("spark.cassandra.output.concurrent.writes", str(WRITES_IN_FLIGHT_PER_TASK))
            .config("spark.cassandra.output.batch.grouping.key", "replica_set")
            .config("spark.cassandra.output.batch.size.rows", "10")
        )
    spark = builder.getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


def udf_cleaned(spark, raw):
    spark.sparkContext.addPyFile(os.path.join(HERE, "clean_udf.py"))
    import clean_udf

    cleaned = F.udf(
        clean_udf.clean_record,
        StructType([StructField("key", StringType()), StructField("value", StringType())]),
    )
    return raw.select(cleaned("json").alias("out")).where("out IS NOT NULL").select("out.key", "out.value")


def seconds(timestamp):
    return datetime.strptime(timestamp, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=timezone.utc).timestamp()


def main():
    job, jars, bootstrap, topic, records, checkpoint, output = sys.argv[1:8]
    to_cassandra = job == "sink"
    contact_point, keyspace = output.split("/", 1) if to_cassandra else (None, None)
    spark = session(job, jars, contact_point)
    raw = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", "earliest")
        # homestream's transform writes in transactions: read what they committed.
        .option("kafka.isolation.level", "read_committed")
        .load()
        .select(F.col("value").cast("string").alias("json"))
    )
    if job == "transform":
        out = clean.to_kafka(clean.clean(raw))
    elif job == "transform-udf":
        out = udf_cleaned(spark, raw)
    elif job == "sink":
        out = clean.parse_cleaned(raw)
    else:
        sys.exit(f"unknown job {job!r}: transform, transform-udf or sink")

    writer = out.writeStream.option("checkpointLocation", checkpoint).trigger(availableNow=True)
    if to_cassandra:
        writer = writer.format("org.apache.spark.sql.cassandra").option("keyspace", keyspace).option("table", "listings")
    else:
        writer = (
            writer.format("kafka")
            .option("kafka.bootstrap.servers", bootstrap)
            .option("topic", output)
            .option("kafka.linger.ms", "5")
            .option("kafka.batch.size", "1000000")
        )
    query = writer.start()
    query.awaitTermination()
    batches = [progress for progress in query.recentProgress if progress["numInputRows"] > 0]
    if not batches:
        sys.exit(f"Spark read no records from {topic}")
    last = batches[-1]
    read = sum(progress["numInputRows"] for progress in batches)
    if read != int(records):
        sys.exit(f"Spark read {read} records from {topic}, not {records}")
    print(
        json.dumps(
            {
                "records": read,
                "batches": len(batches),
                "window_start": seconds(batches[0]["timestamp"]),
                "window_end": seconds(last["timestamp"]) + last["durationMs"]["triggerExecution"] / 1000,
                "spark_version": spark.version,
            }
        ),
        flush=True,
    )
    spark.stop()


if __name__ == "__main__":
    main()
