package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/prometheus/prompb"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/sasl/scram"

	"github.com/augur-ops/augur/actuators"
)

// roleACLs are the Kafka ACLs each role needs, as README "Kafka ACLs"
// lists them (topics created beforehand by an administrator).
var roleACLs = map[string][]kfake.ACL{
	"ingest": topicACL("augur.samples", kmsg.ACLOperationDescribe, kmsg.ACLOperationWrite),
	"stream": join(
		topicACL("augur.samples", kmsg.ACLOperationDescribe, kmsg.ACLOperationRead),
		topicACL("augur.state", kmsg.ACLOperationDescribe, kmsg.ACLOperationRead, kmsg.ACLOperationWrite),
		topicACL("augur.decisions", kmsg.ACLOperationDescribe, kmsg.ACLOperationWrite),
		topicACL("augur.actions", kmsg.ACLOperationDescribe, kmsg.ACLOperationRead),
		topicACL("augur.forecasts", kmsg.ACLOperationDescribe, kmsg.ACLOperationWrite),
		[]kfake.ACL{{Resource: kmsg.ACLResourceTypeGroup, Name: "augur-stream", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationRead, Allow: true}},
		txnACL("augur-stream-"),
	),
	"act": join(
		topicACL("augur.decisions", kmsg.ACLOperationDescribe, kmsg.ACLOperationRead),
		topicACL("augur.actions", kmsg.ACLOperationDescribe, kmsg.ACLOperationRead, kmsg.ACLOperationWrite),
		[]kfake.ACL{{Resource: kmsg.ACLResourceTypeGroup, Name: "augur-act", Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: kmsg.ACLOperationRead, Allow: true}},
		txnACL("augur-act-"),
	),
}

func topicACL(topic string, ops ...kmsg.ACLOperation) []kfake.ACL {
	var out []kfake.ACL
	for _, op := range ops {
		out = append(out, kfake.ACL{Resource: kmsg.ACLResourceTypeTopic, Name: topic, Pattern: kmsg.ACLResourcePatternTypeLiteral, Operation: op, Allow: true})
	}
	return out
}

func txnACL(prefix string) []kfake.ACL {
	var out []kfake.ACL
	for _, op := range []kmsg.ACLOperation{kmsg.ACLOperationDescribe, kmsg.ACLOperationWrite} {
		out = append(out, kfake.ACL{Resource: kmsg.ACLResourceTypeTransactionalId, Name: prefix, Pattern: kmsg.ACLResourcePatternTypePrefixed, Operation: op, Allow: true})
	}
	return out
}

func join(lists ...[]kfake.ACL) []kfake.ACL {
	var out []kfake.ACL
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// TestRolesWithTheirACLs runs each role alone as a principal holding only
// the ACLs README lists for it: ingest writes, stream consumes and commits
// its transactions, act joins its group; a principal without them stops
// each role with an error naming the authorization that failed. Here on
// kfake's authorizer; TestRealKafkaSecure runs the same on Apache Kafka's.
func TestRolesWithTheirACLs(t *testing.T) {
	opts := []kfake.Opt{kfake.NumBrokers(1), kfake.EnableSASL(), kfake.EnableACLs(),
		kfake.Superuser("SCRAM-SHA-512", "admin", "admin-pw"),
		kfake.User("SCRAM-SHA-512", "nobody", "pw")}
	for role, acls := range roleACLs {
		opts = append(opts, kfake.User("SCRAM-SHA-512", role, "pw", acls...))
	}
	c, err := kfake.NewCluster(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	broker := c.ListenAddrs()[0]
	admin, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.SASL(scram.Auth{User: "admin", Pass: "admin-pw"}.AsSha512Mechanism()))
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	rolesWithTheirACLs(t, broker, admin, "")
}

// grantRoleACLs creates SCRAM-SHA-512 users "ingest", "stream", "act" and
// "nobody" (password "pw") through admin, a superuser's client, and gives
// each role's user the ACLs of roleACLs: how an operator would set up a
// real cluster.
func grantRoleACLs(t *testing.T, admin *kgo.Client) {
	t.Helper()
	adm := kadm.NewClient(admin)
	var users []kadm.UpsertSCRAM
	for _, u := range []string{"ingest", "stream", "act", "nobody"} {
		users = append(users, kadm.UpsertSCRAM{User: u, Mechanism: kadm.ScramSha512, Iterations: 4096, Password: "pw"})
	}
	res, err := adm.AlterUserSCRAMs(t.Context(), nil, users)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range res {
		if r.Err != nil {
			t.Fatalf("create user %s: %v", r.User, r.Err)
		}
	}
	for role, acls := range roleACLs {
		for _, a := range acls {
			b := kadm.NewACLs().Allow("User:" + role).AllowHosts("*").ResourcePatternType(a.Pattern).Operations(a.Operation)
			switch a.Resource {
			case kmsg.ACLResourceTypeTopic:
				b.Topics(a.Name)
			case kmsg.ACLResourceTypeGroup:
				b.Groups(a.Name)
			case kmsg.ACLResourceTypeTransactionalId:
				b.TransactionalIDs(a.Name)
			default:
				t.Fatalf("ACL on %v: not mapped", a.Resource)
			}
			res, err := adm.CreateACLs(t.Context(), b)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range res {
				if r.Err != nil {
					t.Fatalf("create ACL %+v for %s: %v", a, role, r.Err)
				}
			}
		}
	}
}

// rolesWithTheirACLs runs the checks of TestRolesWithTheirACLs against
// broker, where users "ingest", "stream", "act" (holding roleACLs) and
// "nobody" (holding none) authenticate with SCRAM-SHA-512 and password
// "pw"; admin is a superuser's client; tls is the kafka: lines that
// connect to broker besides sasl ("" for plaintext).
func rolesWithTheirACLs(t *testing.T, broker string, admin *kgo.Client, tls string) {
	t.Helper()
	adm := kadm.NewClient(admin)
	compact := "compact"
	for topic, cfg := range map[string]map[string]*string{"augur.samples": nil, "augur.state": {"cleanup.policy": &compact}, "augur.decisions": nil, "augur.actions": nil, "augur.forecasts": nil} {
		if _, err := adm.CreateTopic(t.Context(), 2, 1, cfg, topic); err != nil && !errors.Is(err, kerr.TopicAlreadyExists) {
			t.Fatal(err)
		}
	}
	committed := func() int64 {
		offs, err := adm.FetchOffsets(t.Context(), "augur-stream")
		if errors.Is(err, kerr.GroupIDNotFound) {
			return 0
		}
		if err != nil || offs.Error() != nil {
			t.Fatalf("stream group offsets: %v %v", err, offs.Error())
		}
		n := int64(0)
		offs.Each(func(o kadm.OffsetResponse) { n += o.At })
		return n
	}
	before := committed()

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "pw"), "pw\n")
	writeFile(t, filepath.Join(dir, "decision.key"), testHexKey+"\n")
	cfgFor := func(user, listen string) string {
		f := filepath.Join(dir, user+".yaml")
		writeFile(t, f, fmt.Sprintf(`listen: %s
kafka:
  brokers: [%s]
  partitions: 2
  sasl: {mechanism: scram-sha-512, username: %s, password_file: %s}
%s
`, listen, broker, user, filepath.Join(dir, "pw"), tls))
		return f
	}
	key := filepath.Join(dir, "decision.key")
	args := map[string][]string{
		"stream": {"stream", "-decision-key-file", key, "-metrics-addr", "", "-create-topics=false"},
		"act":    {"act", "-decision-key-file", key, "-kubeconfig", "none", "-metrics-addr", ""},
	}

	// ingest writes a request as its principal.
	listen := freePort(t)
	ictx, stopIngest := context.WithCancel(t.Context())
	done := make(chan int, 1)
	var ingestErr strings.Builder
	go func() {
		done <- runMain(ictx, []string{"ingest", "-config", cfgFor("ingest", listen)}, io.Discard, &ingestErr, slog.New(slog.DiscardHandler))
	}()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("augur ingest stderr: %s", ingestErr.String())
		}
	})
	waitReady(t, "http://"+listen+"/readyz")
	now := time.Now().UnixMilli()
	for i := range 3 {
		pushV1(t, "http://"+listen+"/api/v1/write", &prompb.WriteRequest{Timeseries: []prompb.TimeSeries{{
			Labels:  []prompb.Label{{Name: "__name__", Value: "up"}, {Name: "job", Value: "a"}},
			Samples: []prompb.Sample{{Timestamp: now + int64(i)*1000, Value: 1}},
		}}})
	}
	stopIngest()
	if code := <-done; code != 0 {
		t.Fatalf("augur ingest as its principal exited %d: %s", code, ingestErr.String())
	}

	// An audit record of an earlier run: act reads augur.actions back
	// when it starts (actuators.Recall), which needs READ there.
	audit := &kgo.Record{Topic: "augur.actions", Key: []byte("k8s/deployment/a/b"),
		Value:   []byte(`{"decisionId":"d-earlier","kind":"scale","outcome":"noop"}`),
		Headers: []kgo.RecordHeader{{Key: actuators.RecordHeader, Value: []byte(actuators.RecordDecision)}}}
	if err := admin.ProduceSync(t.Context(), audit).FirstErr(); err != nil {
		t.Fatal(err)
	}

	// stream and act run as their principals until stopped.
	for _, role := range []string{"stream", "act"} {
		rctx, stop := context.WithTimeout(t.Context(), 6*time.Second)
		var stderr strings.Builder
		code := runMain(rctx, append(args[role], "-config", cfgFor(role, freePort(t))), io.Discard, &stderr, slog.New(slog.DiscardHandler))
		stop()
		if code != 0 {
			t.Errorf("augur %s as its principal exited %d: %s", role, code, stderr.String())
		}
	}
	// The stream committed its offsets past ingest's records: its
	// principal read and wrote.
	if after := committed(); after < before+3 {
		t.Errorf("the stream group's committed offsets went from %d to %d as its principal, want 3 more", before, after)
	}

	// A principal without the ACLs is refused, named.
	for _, role := range []string{"ingest", "stream", "act"} {
		a := append(args[role], "-config", cfgFor("nobody", freePort(t)))
		if role == "ingest" {
			a = []string{"ingest", "-config", cfgFor("nobody", freePort(t))}
		}
		rctx, stop := context.WithTimeout(t.Context(), 30*time.Second)
		var stderr strings.Builder
		code := runMain(rctx, a, io.Discard, &stderr, slog.New(slog.DiscardHandler))
		stop()
		if code == 0 || !strings.Contains(stderr.String(), "AUTHORIZATION_FAILED") || !strings.Contains(stderr.String(), "README") {
			t.Errorf("augur %s without ACLs: exit %d, %q: want an authorization error pointing to the README", role, code, stderr.String())
		}
	}
}
