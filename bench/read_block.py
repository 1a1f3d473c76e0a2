#!/usr/bin/env python3
"""Reads augur.samples with tools that are not augur's: librdkafka (through
confluent-kafka) fetches the records, pyarrow decodes the Arrow IPC blocks.

usage: read_block.py BROKER [TOPIC] [MAX_RECORDS]

Prints one JSON line per series: partition, tenant, block version, labels
(from the series column of versions 2 and 3, or the labels map of version 1),
its series_ref (version 3), timestamps, values (as hex bits, so stale-marker
NaNs are exact), metric type. A version 3 row that refers to a series by
number gets the labels of the row that defined it (same partition and
augur.series.dict), or null when this read began after the definition.
Exits non-zero when no record arrives within 20 seconds.
"""
import json
import struct
import sys

import pyarrow as pa
from confluent_kafka import Consumer, TopicPartition


def main():
    broker = sys.argv[1]
    topic = sys.argv[2] if len(sys.argv) > 2 else "augur.samples"
    limit = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    c = Consumer({"bootstrap.servers": broker, "group.id": "read-block-py",
                  "auto.offset.reset": "earliest", "enable.auto.commit": False,
                  "isolation.level": "read_committed"})
    md = c.list_topics(topic, timeout=10)
    parts = md.topics[topic].partitions
    c.assign([TopicPartition(topic, p, 0) for p in parts])
    seen = 0
    idle = 0
    defined = {}  # (partition, dictionary, series_ref) -> labels
    while seen < limit and idle < 20:
        msg = c.poll(1.0)
        if msg is None:
            idle += 1
            continue
        if msg.error():
            raise SystemExit(f"kafka: {msg.error()}")
        reader = pa.ipc.open_stream(msg.value())
        table = reader.read_all()
        meta = {k.decode(): v.decode() for k, v in (reader.schema.metadata or {}).items()}
        for row in table.to_pylist():
            ref = row.get("series_ref") or 0
            key = (msg.partition(), meta.get("augur.series.dict"), ref)
            if "series" in row:  # versions 2 and 3: 0xff name 0xfe value per label
                pairs = (p.split(b"\xfe") for p in row["series"].split(b"\xff")[1:])
                labels = {n.decode(): v.decode() for n, v in pairs}
                if ref and labels:
                    defined[key] = labels
                elif ref:
                    labels = defined.get(key)
            else:  # version 1: a map column
                labels = dict(row["labels"])
            print(json.dumps({
                "partition": msg.partition(),
                "tenant": meta.get("tenant", ""),
                "version": meta.get("augur.block.version"),
                "labels": labels,
                "series_ref": ref,
                "timestamps": row["timestamps"],
                "values": [struct.pack(">d", v).hex() for v in row["values"]],
                "metric_type": row["metric_type"],
                "histograms": len(row["histograms"]),
                "exemplars": len(row["exemplars"]),
            }, sort_keys=True))
        seen += 1
    c.close()
    if seen == 0:
        raise SystemExit("no record within 20 seconds")


if __name__ == "__main__":
    main()
