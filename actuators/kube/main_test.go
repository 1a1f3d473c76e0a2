package kube

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/protobuf/types/known/timestamppb"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/augur-ops/augur/actuators"
	"github.com/augur-ops/augur/internal/kubetest"
	"github.com/augur-ops/augur/proto"
)

// cluster is the package's real control plane (etcd, kube-apiserver,
// kube-controller-manager, kube-scheduler, kwok), nil when the binaries
// are absent outside CI.
var cluster *kubetest.Cluster

func TestMain(m *testing.M) {
	if _, ok := kubetest.BinDir(); ok {
		c, err := kubetest.Start(kubetest.Options{Controllers: true})
		if err != nil {
			fmt.Fprintln(os.Stderr, "start control plane:", err)
			os.Exit(1)
		}
		cluster = c
	}
	code := m.Run()
	if cluster != nil {
		if code != 0 {
			fmt.Fprintln(os.Stderr, cluster.Logs(4000))
		}
		cluster.Stop()
	}
	os.Exit(code)
}

// needCluster skips without the binaries, but fails in CI where .ci/run
// builds them.
func needCluster(t *testing.T) *kubetest.Cluster {
	t.Helper()
	if cluster == nil {
		dir, _ := kubetest.BinDir()
		if os.Getenv("CI") == "true" {
			t.Fatalf("kube binaries missing in %s under CI: run .ci/kube/build.sh", dir)
		}
		t.Skipf("kube binaries missing in %s: run .ci/kube/build.sh", dir)
	}
	return cluster
}

var testKey = []byte("0123456789abcdef0123456789abcdef")

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// harness is an Actuator over a kube Executor talking to the cluster as
// restCfg.
type harness struct {
	cs  kubernetes.Interface // admin
	ex  *Executor
	act *actuators.Actuator
	clk *clock
	reg *prometheus.Registry
	n   int
}

func newHarness(t *testing.T, restCfg *rest.Config, mut func(*actuators.Config)) *harness {
	t.Helper()
	c := needCluster(t)
	if restCfg == nil {
		restCfg = c.Config
	}
	admin, err := kubernetes.NewForConfig(c.Config)
	if err != nil {
		t.Fatal(err)
	}
	cs, err := kubernetes.NewForConfig(restCfg)
	if err != nil {
		t.Fatal(err)
	}
	clk := &clock{now: time.Now()}
	reg := prometheus.NewRegistry()
	m, err := actuators.NewAPIMetrics(reg)
	if err != nil {
		t.Fatal(err)
	}
	kcfg := DefaultConfig()
	kcfg.Now = clk.Now
	ex, err := New(kcfg, cs, m, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ex.Close)
	cfg := actuators.DefaultConfig()
	cfg.DecisionKeys = [][]byte{testKey}
	cfg.Mode = actuators.ModeEnforce
	cfg.Now = clk.Now
	if mut != nil {
		mut(&cfg)
	}
	act, err := actuators.New(cfg, nil, ex, nil, reg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	return &harness{cs: admin, ex: ex, act: act, clk: clk, reg: reg}
}

// decide signs and handles one decision.
func (h *harness) decide(t *testing.T, kind, target string, ch *proto.Change, mut ...func(*proto.Decision)) *proto.Action {
	t.Helper()
	h.n++
	d := &proto.Decision{Kind: kind, Target: target, Rule: "test-rule", Desired: ch,
		CreatedAt: timestamppb.New(h.clk.Now()), ExpiresAt: timestamppb.New(h.clk.Now().Add(time.Minute))}
	for _, m := range mut {
		m(d)
	}
	d.Id = proto.DecisionID(d.Rule, kind, target, ch, h.clk.Now().UnixNano()+int64(h.n))
	if err := proto.Sign(d, testKey); err != nil {
		t.Fatal(err)
	}
	v, err := proto.MarshalJSON(d)
	if err != nil {
		t.Fatal(err)
	}
	return h.act.Handle(t.Context(), v)
}

func want(t *testing.T, a *proto.Action, outcome, guardrail string) {
	t.Helper()
	if a.GetOutcome() != outcome || a.GetGuardrail() != guardrail {
		t.Fatalf("outcome %q guardrail %q (%s), want %q %q", a.GetOutcome(), a.GetGuardrail(), a.GetError(), outcome, guardrail)
	}
}

// namespace creates a fresh namespace for one test.
func namespace(t *testing.T, cs kubernetes.Interface, name string) string {
	t.Helper()
	_, err := cs.CoreV1().Namespaces().Create(t.Context(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

func deployment(t *testing.T, cs kubernetes.Interface, ns, name string, replicas int32, cpu string) *appsv1.Deployment {
	t.Helper()
	labels := map[string]string{"app": name}
	d := &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: appsv1.DeploymentSpec{
			Replicas: &replicas,
			Selector: &metav1.LabelSelector{MatchLabels: labels},
			Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec: corev1.PodSpec{
					TerminationGracePeriodSeconds: new(int64),
					Tolerations:                   []corev1.Toleration{{Key: "kwok.x-k8s.io/node", Operator: corev1.TolerationOpExists, Effect: corev1.TaintEffectNoSchedule}},
					Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse(cpu)}}}},
				},
			},
		},
	}
	out, err := cs.AppsV1().Deployments(ns).Create(t.Context(), d, metav1.CreateOptions{})
	if err == nil {
		t.Cleanup(func() {
			_ = cs.AppsV1().Deployments(ns).Delete(context.Background(), name, metav1.DeleteOptions{})
		})
	}
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// eventually polls cond every 200ms until it holds or 60s pass.
func eventually(t *testing.T, what string, cond func(ctx context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var last error
	for {
		ok, err := cond(ctx)
		if ok {
			return
		}
		if err != nil {
			last = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out waiting for %s (last error: %v)", what, last)
		case <-time.After(200 * time.Millisecond):
		}
	}
}
