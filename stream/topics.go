package stream

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
)

// DecisionPartitions is the partition count augur gives the topics it
// creates for decisions, actions and forecasts. Records are keyed by
// target; up to twelve consumers of a group share them.
const DecisionPartitions = 12

// samplesTopicWait is how long EnsureTopics waits for the samples topic to
// appear in the metadata: Apache Kafka answers CreateTopics before every
// broker knows the topic (TestEOSAbortRollsBack met it).
const samplesTopicWait = 10 * time.Second

// EnsureTopics creates the decisions, state and forecasts topics when they
// do not exist: augur.state compacted with as many partitions as the
// samples topic (which must exist), augur.decisions and augur.forecasts
// with decisionPartitions partitions.
// It fails when an existing state topic's partition count differs from the
// samples topic's: checkpoints would land on the wrong partitions.
//
// A samples topic created a moment before (by the receiver, or a script)
// may not be in every broker's metadata yet: it is looked up again for up
// to samplesTopicWait before EnsureTopics gives up.
func EnsureTopics(ctx context.Context, adm *kadm.Client, cfg *Config, replication int16, decisionPartitions int32) error {
	var td kadm.TopicDetails
	var samples kadm.TopicDetail
	for deadline := time.Now().Add(samplesTopicWait); ; {
		var err error
		td, err = adm.ListTopics(ctx, cfg.SamplesTopic, cfg.StateTopic, cfg.DecisionsTopic)
		if err != nil {
			return fmt.Errorf("list topics: %w", err)
		}
		var ok bool
		if samples, ok = td[cfg.SamplesTopic]; ok && samples.Err == nil {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("samples topic %s does not exist", cfg.SamplesTopic)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("samples topic %s does not exist: %w", cfg.SamplesTopic, ctx.Err())
		case <-time.After(200 * time.Millisecond):
		}
	}
	n := int32(len(samples.Partitions))
	if st, ok := td[cfg.StateTopic]; ok && st.Err == nil {
		if int32(len(st.Partitions)) != n {
			return fmt.Errorf("state topic %s has %d partitions, samples topic %s has %d: they must match",
				cfg.StateTopic, len(st.Partitions), cfg.SamplesTopic, n)
		}
	} else {
		compact := "compact"
		if _, err := adm.CreateTopic(ctx, n, replication, map[string]*string{"cleanup.policy": &compact}, cfg.StateTopic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			return fmt.Errorf("create state topic: %w", err)
		}
	}
	if err := CreateMissing(ctx, adm, cfg.DecisionsTopic, decisionPartitions, replication); err != nil {
		return err
	}
	if cfg.ForecastsTopic != "" && cfg.ForecastsTopic != "-" {
		return CreateMissing(ctx, adm, cfg.ForecastsTopic, decisionPartitions, replication)
	}
	return nil
}

// CreateMissing creates topic with partitions and replication (-1: the
// broker's default) unless it exists: a principal allowed to write a topic
// but not to create it starts when the topic was made beforehand.
func CreateMissing(ctx context.Context, adm *kadm.Client, topic string, partitions int32, replication int16) error {
	td, err := adm.ListTopics(ctx, topic)
	if err != nil {
		return fmt.Errorf("list topic %s: %w", topic, err)
	}
	if d, ok := td[topic]; ok && d.Err == nil {
		return nil
	}
	if _, err := adm.CreateTopic(ctx, partitions, replication, nil, topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
		return fmt.Errorf("create topic %s: %w", topic, err)
	}
	return nil
}
