package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
	"time"

	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/arczonalshift"
	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/augur-ops/augur/actuators"
	"github.com/augur-ops/augur/actuators/kube"
	"github.com/augur-ops/augur/actuators/zonalshift"
	"github.com/augur-ops/augur/internal/kafkaconn"
	"github.com/augur-ops/augur/internal/recent"
	"github.com/augur-ops/augur/stream"
)

func init() {
	commands["act"] = command{
		summary: "carry out decisions from augur.decisions (Kubernetes, AWS ARC zonal shift)",
		run:     runAct,
	}
}

func runAct(ctx context.Context, args []string, stdout io.Writer, log *slog.Logger) error {
	cfg := actuators.DefaultConfig()
	fs := newFlagSet("act", stdout)
	brokers := fs.String("brokers", os.Getenv("AUGUR_KAFKA_BROKERS"), "comma-separated Kafka seed brokers (required, here or in -config)")
	configFile := fs.String("config", "", "YAML config file: its kafka: block (brokers, client_id, tls, sasl) and its act: block (mode, guardrails, rules; the flags below override it)")
	group := fs.String("group", "augur-act", "consumer group of the actuators")
	mode := fs.String("mode", string(cfg.Mode), "global mode: off, dry-run or enforce")
	keyFile := fs.String("decision-key-file", "", "file holding the HMAC key decisions are signed with: 64 hex digits, e.g. from openssl rand -hex 32 (required)")
	kubeconfig := fs.String("kubeconfig", kubeInCluster, `Kubernetes API: "in-cluster" (the pod's service account), "none" (no Kubernetes actions), or a kubeconfig path`)
	arc := fs.Bool("zonal-shift", false, "enable AWS ARC zonal shifts (credentials and region from the AWS SDK's default chain)")
	arcEndpoint := fs.String("zonal-shift-endpoint", "", "override the ARC endpoint (tests, VPC endpoints)")
	deny := fs.String("deny-namespaces", strings.Join(cfg.DenyNamespaces, ","), "namespaces never touched")
	allow := fs.String("allow-namespaces", "", "when set, the only namespaces touched")
	kill := fs.String("kill-switch-file", "", "while this file exists every decision is refused")
	actor := fs.String("actor", actHostname(cfg.Actor), "name of this instance in audit records and Events")
	txn := fs.Bool("transactional", true, "write audit records and commit offsets in one Kafka transaction (exactly one record per decision); false: write, then commit")
	createTopics := fs.Bool("create-topics", true, "create the actions topic when missing (needs CREATE on it; false: it must exist)")
	leaderElect := fs.Bool("leader-elect", false, "run only while holding the augur-system/augur-actuator Lease (several replicas for the same targets)")
	metricsAddr := fs.String("metrics-addr", ":9465", `address serving /metrics, the decisions API (/api/v1/decisions, /api/v1/actions, /api/v1/forecasts, /api/v1/rules) and the console at /; "" disables`)
	var api apiFlags
	api.register(fs)
	decisionsTopic := fs.String("decisions-topic", cfg.DecisionsTopic, "topic consumed")
	actionsTopic := fs.String("actions-topic", cfg.ActionsTopic, "topic the audit records go to")
	kf := registerKafkaFlags(fs)
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	// The act: block of -config is the base (its guardrails have no
	// flags; it was ignored, and with it every guardrail the README
	// documents); a flag given on the command line overrides it.
	kc, fc, err := roleKafka(*configFile, kf, brokers)
	if err != nil {
		return err
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	flagOr := func(name string) bool { return given[name] || *configFile == "" }
	if *configFile != "" {
		if !fc.Act.Mode.Valid() {
			return fmt.Errorf("config %s: act.mode: must be off, dry-run or enforce, got %q", *configFile, fc.Act.Mode)
		}
		cfg = fc.Act.Config
		if fc.Act.Kubeconfig != "" && !given["kubeconfig"] {
			*kubeconfig = fc.Act.Kubeconfig
		}
	}
	if *brokers == "" || *keyFile == "" {
		fmt.Fprintln(stdout, "augur act: -brokers (or kafka.brokers in -config) and -decision-key-file are required")
		return errUsage
	}
	// The key the stream signs with, read and checked the same way.
	key, err := stream.LoadKey(*keyFile)
	if err != nil {
		return err
	}
	logKey(log, "verifies decisions", *keyFile, key)
	cfg.DecisionKeys = [][]byte{key}
	if flagOr("mode") {
		cfg.Mode = actuators.Mode(*mode)
	}
	if flagOr("deny-namespaces") {
		cfg.DenyNamespaces = actList(*deny)
	}
	if flagOr("allow-namespaces") {
		cfg.AllowNamespaces = actList(*allow)
	}
	if flagOr("kill-switch-file") {
		cfg.KillSwitchFile = *kill
	}
	if given["actor"] {
		cfg.Actor = *actor
	} else {
		cfg.Actor = actHostname(cfg.Actor) // one per replica, as augur run does
	}
	if flagOr("decisions-topic") {
		cfg.DecisionsTopic = *decisionsTopic
	}
	if flagOr("actions-topic") {
		cfg.ActionsTopic = *actionsTopic
	}

	reg := processRegistry()
	apiM, err := actuators.NewAPIMetrics(reg)
	if err != nil {
		return err
	}
	var kx, zx actuators.Executor
	var cs kubernetes.Interface
	if !noKube(*kubeconfig) {
		rc, err := kubeRESTConfig(*kubeconfig)
		if err != nil {
			return err
		}
		cs, err = kubernetes.NewForConfig(rc)
		if err != nil {
			return fmt.Errorf("kubernetes client: %w", err)
		}
		ex, err := kube.New(kube.DefaultConfig(), cs, apiM, log)
		if err != nil {
			return err
		}
		defer ex.Close()
		kx = ex
	}
	if *arc {
		awsCfg, err := awsconfig.LoadDefaultConfig(ctx)
		if err != nil {
			return fmt.Errorf("aws config: %w", err)
		}
		var opts []func(*arczonalshift.Options)
		if *arcEndpoint != "" {
			opts = append(opts, func(o *arczonalshift.Options) { o.BaseEndpoint = arcEndpoint })
		}
		ex, err := zonalshift.New(zonalshift.DefaultConfig(), zonalshift.NewClient(awsCfg, opts...), apiM, log)
		if err != nil {
			return err
		}
		zx = ex
	}
	conn, err := connOptions(ctx, kc, strings.Split(*brokers, ","), false)
	if err != nil {
		return err
	}
	if err := checkKafka(ctx, kc, conn); err != nil {
		return err
	}
	if *createTopics {
		if err := createActionsTopic(ctx, conn, cfg.ActionsTopic, fc.Kafka.Replication); err != nil {
			return err
		}
	}
	act, err := actuators.New(cfg, nil, kx, zx, reg, log)
	if err != nil {
		return err
	}
	kopts := append(append(actuators.ClientOptions(cfg, *group), act.RebalanceOptions(conn)...), conn...)
	// runOnce joins the consumer group for one run: with leader election a
	// standby replica must not hold partitions it does not poll.
	runOnce := func(ctx context.Context) error {
		// What this replica or the one before it admitted is refused if
		// written to augur.decisions again, and the guardrails' memory
		// (cooldowns, stabilization windows, rate limit, blast radius,
		// untaint hold-down) holds.
		if _, err := act.Recall(ctx, conn); err != nil {
			if ctx.Err() != nil {
				return nil // stopped while recalling
			}
			return err
		}
		if *txn {
			sess, err := kgo.NewGroupTransactSession(append(append(actuators.TransactionalOptions(cfg, *group, "augur-act-"+cfg.Actor), act.RebalanceOptions(conn)...), conn...)...)
			if err != nil {
				return fmt.Errorf("kafka transactional session: %w", err)
			}
			defer sess.Close()
			return act.RunSession(ctx, sess)
		}
		cl, err := kgo.NewClient(kopts...)
		if err != nil {
			return fmt.Errorf("kafka client: %w", err)
		}
		defer cl.Close()
		return act.RunClient(ctx, cl)
	}
	if *metricsAddr != "" {
		// The decisions API reads the topics back, as in `augur run`.
		stop, err := serveRoleHTTP(ctx, *metricsAddr, conn, recent.Config{DecisionsTopic: cfg.DecisionsTopic, ActionsTopic: cfg.ActionsTopic,
			ForecastsTopic: "augur.forecasts", Size: api.size, Lookback: api.lookback}, reg, log)
		if err != nil {
			return err
		}
		defer stop()
	}
	log.Info("actuator started", "mode", cfg.Mode, "kubernetes", kx != nil, "zonal_shift", zx != nil, "leader_elect", *leaderElect)
	if !*leaderElect {
		return runOnce(ctx)
	}
	if cs == nil {
		return errors.New("-leader-elect needs Kubernetes (-kubeconfig)")
	}
	// A replica that loses the Lease exits (kube.ErrLeadershipLost) and is
	// restarted; it never campaigns again in the same process.
	return kube.RunLeader(ctx, cs, kube.LeaderConfig{Identity: cfg.Actor}, runOnce)
}

// The values of act.kubeconfig and `augur act -kubeconfig` other than a
// path. They mean the same in every subcommand; empty means none.
const (
	kubeNone      = "none"
	kubeInCluster = "in-cluster"
)

// noKube reports whether a kubeconfig setting disables Kubernetes actions.
func noKube(setting string) bool { return setting == "" || setting == kubeNone }

// kubeRESTConfig returns the client config of a kubeconfig setting that is
// not none: the in-cluster config or the kubeconfig file at the path.
func kubeRESTConfig(setting string) (*rest.Config, error) {
	if setting == kubeInCluster {
		c, err := rest.InClusterConfig()
		if err != nil {
			return nil, fmt.Errorf("in-cluster kubernetes config (set a kubeconfig path outside a cluster): %w", err)
		}
		return c, nil
	}
	path := setting
	c, err := clientcmd.BuildConfigFromFlags("", path)
	if err != nil {
		return nil, fmt.Errorf("load kubeconfig %s: %w", path, err)
	}
	return c, nil
}

func actList(s string) []string {
	var out []string
	for p := range strings.SplitSeq(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

func actHostname(def string) string {
	if h, err := os.Hostname(); err == nil && h != "" {
		return h
	}
	return def
}

// createActionsTopic creates the audit topic when missing: the actuators
// write it and every stream member reads it back. Without it each audit
// transaction aborts and the decisions are handled again and again.
func createActionsTopic(ctx context.Context, conn []kgo.Opt, topic string, replication int16) error {
	cl, err := kgo.NewClient(conn...)
	if err != nil {
		return fmt.Errorf("kafka client: %w", err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	return kafkaconn.ACLHint(stream.CreateMissing(ctx, kadm.NewClient(cl), topic, stream.DecisionPartitions, replication))
}
