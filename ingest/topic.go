package ingest

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// EnsureTopic creates the samples topic with partitions and replication
// when it does not exist, allowing records of maxRecordBytes plus headroom,
// and returns the partition count the topic has. An existing topic keeps
// its partition count: routing follows it.
func EnsureTopic(ctx context.Context, adm *kadm.Client, topic string, partitions int32, replication int16, maxRecordBytes int) (int32, error) {
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return 0, fmt.Errorf("list topic %s: %w", topic, err)
	}
	if t, ok := td[topic]; ok && t.Err == nil {
		return int32(len(t.Partitions)), nil
	}
	maxMsg := strconv.Itoa(maxRecordBytes + 1<<20)
	_, err = adm.CreateTopic(ctx, partitions, replication, map[string]*string{"max.message.bytes": &maxMsg}, topic)
	if err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return 0, fmt.Errorf("create topic %s: %w", topic, err)
	}
	return partitions, nil
}
