#!/usr/bin/env python3
"""Reads augur.samples with tools that are not augur's: librdkafka (through
confluent-kafka) fetches the records, pyarrow decodes the Arrow IPC blocks.

usage: read_block.py BROKER [TOPIC] [MAX_RECORDS]

Prints one JSON line per series: partition, tenant, block version, labels
(from the series column of version 2 or the labels map of version 1), timestamps,
values (as hex bits, so stale-marker NaNs are exact), metric type. Exits
non-zero when no record arrives within 20 seconds.
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
            if "series" in row:  # version 2: 0xff name 0xfe value per label
                pairs = (p.split(b"\xfe") for p in row["series"].split(b"\xff")[1:])
                labels = {n.decode(): v.decode() for n, v in pairs}
            else:  # version 1: a map column
                labels = dict(row["labels"])
            print(json.dumps({
                "partition": msg.partition(),
                "tenant": meta.get("tenant", ""),
                "version": meta.get("augur.block.version"),
                "labels": labels,
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
