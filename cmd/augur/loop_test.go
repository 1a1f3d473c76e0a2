package main

import (
	"context"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	appsv1 "k8s.io/api/apps/v1"
	autoscalingv1 "k8s.io/api/autoscaling/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/augur-ops/augur/internal/kubetest"
	"github.com/augur-ops/augur/proto"
)

// loadServer is the workload's exporter: one counter per service whose
// rate the test sets, scraped by the real Prometheus.
type loadServer struct {
	mu     sync.Mutex
	rate   map[string]float64
	total  map[string]float64
	lastAt time.Time
}

func (s *loadServer) set(service string, rps float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	s.rate[service] = rps
}

// advance adds each rate times the time since the last call.
func (s *loadServer) advance() {
	now := time.Now()
	dt := now.Sub(s.lastAt).Seconds()
	s.lastAt = now
	for k, r := range s.rate {
		s.total[k] += r * dt
	}
}

func (s *loadServer) ServeHTTP(w http.ResponseWriter, _ *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.advance()
	fmt.Fprintln(w, "# TYPE demo_requests_total counter")
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range s.total {
			if !yield(k) {
				return
			}
		}
	}) {
		fmt.Fprintf(w, "demo_requests_total{service=%q} %g\n", k, s.total[k])
	}
}

// The rules of the loop test: one per mode, and one whose target is in a
// namespace the actuator may not touch. 10 requests per second per pod.
const loopRules = `rules:
- name: api
  scaling:
    selector: 'demo_requests_total{service="api"}'
    capacity_per_pod: 10
    window: 10s
    horizon: 30s
    min_replicas: 2
    max_replicas: 20
    scale_down_delay: 1m
    target: {namespace: demo, name: api}
- name: web
  scaling:
    selector: 'demo_requests_total{service="web"}'
    capacity_per_pod: 10
    window: 10s
    horizon: 30s
    min_replicas: 2
    max_replicas: 20
    mode: hpa_min
    target: {namespace: demo, name: web}
- name: batch
  scaling:
    selector: 'demo_requests_total{service="batch"}'
    capacity_per_pod: 10
    window: 10s
    horizon: 30s
    min_replicas: 1
    max_replicas: 20
    mode: reserve_capacity
    target: {namespace: augur-system, name: augur-capacity-placeholder}
- name: other
  scaling:
    selector: 'demo_requests_total{service="other"}'
    capacity_per_pod: 10
    window: 10s
    horizon: 30s
    min_replicas: 2
    max_replicas: 20
    target: {namespace: other, name: api}
`

// TestEnforceLoopEndToEnd closes the whole loop as an operator runs it: a
// real Prometheus scrapes a workload's request counter and remote-writes
// to `augur run` in enforce mode, whose actuator acts on a real
// kube-apiserver with the controller-manager, scheduler and kwok nodes.
// When the load needs five times the replicas, the Deployment reaches them
// in bounded steps, each audited applied; the HPA's minimum rises and the
// HPA controller scales; the capacity placeholder gets running pods; the
// rule aimed at a denied namespace stays refused. When the load drops, the
// Deployment scales down after the stabilization window.
func TestEnforceLoopEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("runs Prometheus, a Kubernetes control plane and augur for several minutes")
	}
	promBin := needBinary(t, "prometheus", "apt-get install prometheus")
	if _, ok := kubetest.BinDir(); !ok {
		needBinary(t, "", ".ci/kube/build.sh")
	}
	cluster, err := kubetest.Start(kubetest.Options{Controllers: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("control plane logs:\n%s", cluster.Logs(40))
		}
		cluster.Stop()
	})
	cs, err := kubernetes.NewForConfig(cluster.Config)
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	setUpWorkloads(t, cluster, cs)

	// The workload's exporter, at a load two pods serve.
	load := &loadServer{rate: map[string]float64{}, total: map[string]float64{}, lastAt: time.Now()}
	for _, s := range []string{"api", "web", "other"} {
		load.set(s, 15)
	}
	load.set("batch", 5)
	exporter := serve(t, load)

	dir := t.TempDir()
	broker, listen := freePort(t), freePort(t)
	writeFile(t, filepath.Join(dir, "rules.yaml"), loopRules)
	writeFile(t, filepath.Join(dir, "augur.yaml"), fmt.Sprintf(`listen: %s
data_dir: %s
kafka:
  embedded_addr: %s
  partitions: 2
rules_file: %s
act:
  mode: enforce
  kubeconfig: %s
  cooldown_up: 15s
  cooldown_down: 30s
  scale_down_stabilization: 1m
  retry_interval: 5s
  deny_namespaces: [kube-system, other]
`, listen, filepath.Join(dir, "data"), broker, filepath.Join(dir, "rules.yaml"), filepath.Join(cluster.Dir, "kubeconfig")))
	startRun(t, filepath.Join(dir, "augur.yaml"), listen)
	startProm(t, promBin, exporter, "http://"+listen+"/api/v1/write")
	audit := followActions(t, broker)

	// Warm-up: every rule's forecaster bank is scored at its horizon and
	// the scaler recommends.
	waitFor(t, 5*time.Minute, "every rule recommends replicas", func() (bool, string) {
		m := scrape(t, "http://"+listen+"/metrics")
		n := strings.Count(m, "augur_scaling_recommended_replicas{")
		return n == 4, fmt.Sprintf("%d of 4 rules recommend", n)
	})

	// The load rises to what ten pods serve (five placeholder pods).
	rise := time.Now()
	for _, s := range []string{"api", "web", "other"} {
		load.set(s, 95)
	}
	load.set("batch", 45)
	// The load needs 10 pods; the forecast's upper bound may ask a few more.
	waitFor(t, 6*time.Minute, "demo/api has at least 10 ready replicas", func() (bool, string) {
		d, err := cs.AppsV1().Deployments("demo").Get(ctx, "api", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return d.Status.ReadyReplicas >= 10 && d.Status.ReadyReplicas == *d.Spec.Replicas, fmt.Sprintf("spec %d, ready %d", *d.Spec.Replicas, d.Status.ReadyReplicas)
	})
	t.Logf("load x5 to at least 10 ready replicas of demo/api: %v", time.Since(rise).Round(time.Second))
	waitFor(t, 3*time.Minute, "the HPA controller scales demo/web to the raised minimum", func() (bool, string) {
		h, err := cs.AutoscalingV1().HorizontalPodAutoscalers("demo").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		d, err := cs.AppsV1().Deployments("demo").Get(ctx, "web", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return *h.Spec.MinReplicas >= 10 && d.Status.ReadyReplicas >= *h.Spec.MinReplicas, fmt.Sprintf("minReplicas %d, ready %d", *h.Spec.MinReplicas, d.Status.ReadyReplicas)
	})
	waitFor(t, 3*time.Minute, "at least five placeholder pods running", func() (bool, string) {
		pods, err := cs.CoreV1().Pods("augur-system").List(ctx, metav1.ListOptions{LabelSelector: "app.kubernetes.io/name=augur-capacity-placeholder"})
		if err != nil {
			return false, err.Error()
		}
		running := 0
		for _, p := range pods.Items {
			if p.Status.Phase == corev1.PodRunning && p.DeletionTimestamp == nil {
				running++
			}
		}
		return running >= 5, fmt.Sprintf("%d running", running)
	})
	t.Logf("load x5 to all three targets reached: %v", time.Since(rise).Round(time.Second))

	// Every change to demo/api was a bounded, audited step.
	steps := audit.changes("k8s/deployment/demo/api")
	if len(steps) < 2 {
		t.Fatalf("demo/api changed in %d audited steps, want several bounded ones: %v", len(steps), audit.summary("k8s/deployment/demo/api"))
	}
	for _, s := range steps {
		if s.after > s.before+int32(math.Ceil(float64(s.before)*0.5)) {
			t.Errorf("step %d -> %d exceeds max_step 50%%", s.before, s.after)
		}
	}
	if bad := audit.outcomes("k8s/deployment/demo/api", proto.OutcomeFailed, proto.OutcomeRefused, proto.OutcomeExpired); len(bad) > 0 {
		t.Errorf("demo/api decisions not carried out: %v", bad)
	}
	// The rule aimed at a denied namespace stays refused and changes nothing.
	if refused := audit.outcomes("k8s/deployment/other/api", proto.OutcomeRefused); len(refused) == 0 {
		t.Errorf("no refusal for other/api: %v", audit.summary("k8s/deployment/other/api"))
	}
	if d, err := cs.AppsV1().Deployments("other").Get(ctx, "api", metav1.GetOptions{}); err != nil || *d.Spec.Replicas != 2 {
		t.Errorf("other/api: %v replicas, %v; want 2", d.Spec.Replicas, err)
	}

	// The load drops to what one pod serves: after the stabilization window
	// demo/api goes back down near its minimum of 2. The scaler sizes on at
	// most three times the point forecast (stream's interval cap 2): 24
	// req/s, 3 pods. At 10 req/s that bound sits on 30, the edge between 3
	// and 4 pods, and a rate a little over 10 keeps 4.
	drop := time.Now()
	for _, s := range []string{"api", "web", "other"} {
		load.set(s, 8)
	}
	load.set("batch", 5)
	waitFor(t, 8*time.Minute, "demo/api back to at most 3 replicas", func() (bool, string) {
		d, err := cs.AppsV1().Deployments("demo").Get(ctx, "api", metav1.GetOptions{})
		if err != nil {
			return false, err.Error()
		}
		return *d.Spec.Replicas <= 3, fmt.Sprintf("spec %d", *d.Spec.Replicas)
	})
	t.Logf("load down to demo/api at most 3 replicas: %v; demo/api audit: %v", time.Since(drop).Round(time.Second), audit.summary("k8s/deployment/demo/api"))
	for _, s := range audit.changes("k8s/deployment/demo/api") {
		if s.after < s.before && s.after < s.before-int32(math.Ceil(float64(s.before)*0.5)) {
			t.Errorf("scale-down step %d -> %d exceeds max_step 50%%", s.before, s.after)
		}
	}
}

// setUpWorkloads creates a kwok node and the workloads the rules scale.
func setUpWorkloads(t *testing.T, c *kubetest.Cluster, cs kubernetes.Interface) {
	t.Helper()
	ctx := t.Context()
	capacity := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("200")}
	if _, err := cs.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "kwok-1", Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels: map[string]string{"type": "kwok", "kubernetes.io/hostname": "kwok-1"}},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, ns := range []string{"demo", "other", "augur-system"} {
		if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	_, file, _, _ := runtime.Caller(0)
	if err := c.ApplyFile(ctx, filepath.Join(filepath.Dir(file), "..", "..", "deploy", "kubernetes", "capacity-placeholder.yaml")); err != nil {
		t.Fatalf("apply the capacity placeholder: %v", err)
	}
	for _, w := range []struct{ ns, name string }{{"demo", "api"}, {"demo", "web"}, {"other", "api"}} {
		two := int32(2)
		labels := map[string]string{"app": w.name}
		_, err := cs.AppsV1().Deployments(w.ns).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: w.name, Namespace: w.ns},
			Spec: appsv1.DeploymentSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10",
						Resources: corev1.ResourceRequirements{Requests: corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("100m")}}}},
				}}},
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
	}
	two := int32(2)
	if _, err := cs.AutoscalingV1().HorizontalPodAutoscalers("demo").Create(ctx, &autoscalingv1.HorizontalPodAutoscaler{
		ObjectMeta: metav1.ObjectMeta{Name: "web", Namespace: "demo"},
		Spec: autoscalingv1.HorizontalPodAutoscalerSpec{
			ScaleTargetRef: autoscalingv1.CrossVersionObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"},
			MinReplicas:    &two, MaxReplicas: 20,
		},
	}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 2*time.Minute, "the starting pods run", func() (bool, string) {
		for _, w := range []struct{ ns, name string }{{"demo", "api"}, {"demo", "web"}, {"other", "api"}} {
			d, err := cs.AppsV1().Deployments(w.ns).Get(ctx, w.name, metav1.GetOptions{})
			if err != nil {
				return false, err.Error()
			}
			if d.Status.ReadyReplicas != 2 {
				return false, fmt.Sprintf("%s/%s: %d ready", w.ns, w.name, d.Status.ReadyReplicas)
			}
		}
		return true, ""
	})
}

// auditLog collects the committed records of augur.actions.
type auditLog struct {
	mu   sync.Mutex
	acts []*proto.Action
}

// followActions reads augur.actions from the start until the test ends.
func followActions(t *testing.T, broker string) *auditLog {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics("augur.actions"),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	a := &auditLog{}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			fs := cl.PollFetches(ctx)
			if ctx.Err() != nil || fs.IsClientClosed() {
				return
			}
			fs.EachRecord(func(r *kgo.Record) {
				act, err := proto.UnmarshalAction(r.Value)
				if err != nil {
					t.Errorf("action record: %v", err)
					return
				}
				a.mu.Lock()
				a.acts = append(a.acts, act)
				a.mu.Unlock()
			})
		}
	}()
	t.Cleanup(func() { cancel(); <-done; cl.Close() })
	return a
}

type change struct{ before, after int32 }

// changes returns the applied changes of target's replicas, in order.
func (a *auditLog) changes(target string) []change {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []change
	for _, act := range a.acts {
		if act.GetTarget() != target || act.GetOutcome() != proto.OutcomeApplied {
			continue
		}
		b, _ := strconv.Atoi(act.GetBefore()["replicas"])
		n, _ := strconv.Atoi(act.GetAfter()["replicas"])
		if b != n {
			out = append(out, change{int32(b), int32(n)})
		}
	}
	return out
}

// outcomes returns the records of target with one of the outcomes.
func (a *auditLog) outcomes(target string, outcomes ...string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, act := range a.acts {
		if act.GetTarget() == target && slices.Contains(outcomes, act.GetOutcome()) {
			out = append(out, act.GetOutcome()+" "+act.GetGuardrail()+": "+act.GetError())
		}
	}
	return out
}

// summary renders target's records, one "outcome before->after" each.
func (a *auditLog) summary(target string) []string {
	a.mu.Lock()
	defer a.mu.Unlock()
	var out []string
	for _, act := range a.acts {
		if act.GetTarget() == target {
			out = append(out, fmt.Sprintf("%s[%s] %s->%s", act.GetOutcome(), act.GetGuardrail(), act.GetBefore()["replicas"], act.GetAfter()["replicas"]))
		}
	}
	return out
}

// needBinary returns the path of bin, or skips the test (fails it on CI)
// with how to install it. An empty bin is always missing.
func needBinary(t *testing.T, bin, install string) string {
	t.Helper()
	var err error
	path := ""
	if bin != "" {
		path, err = exec.LookPath(bin)
	}
	if bin == "" || err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s missing under CI: %s", bin, install)
		}
		t.Skipf("%s missing: %s", bin, install)
	}
	return path
}

// serve serves h on a loopback port and returns its host:port.
func serve(t *testing.T, h http.Handler) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })
	return ln.Addr().String()
}

// startProm runs Prometheus scraping target every second and
// remote-writing to writeURL within about a second. An empty target is
// Prometheus itself (job "prometheus").
func startProm(t *testing.T, bin, target, writeURL string) {
	t.Helper()
	dir := t.TempDir()
	listen, job := freePort(t), "demo"
	if target == "" {
		target, job = listen, "prometheus"
	}
	cfg := fmt.Sprintf(`global:
  scrape_interval: 1s
scrape_configs:
- job_name: %s
  static_configs: [{targets: [%q]}]
remote_write:
- url: %s
  queue_config: {batch_send_deadline: 1s, min_backoff: 100ms, max_backoff: 1s}
`, job, target, writeURL)
	writeFile(t, filepath.Join(dir, "prometheus.yml"), cfg)
	runProm(t, bin, dir, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+listen)
}

// runProm runs Prometheus with args, its log in dir, until the test ends
// (the log's tail is shown when the test failed).
func runProm(t *testing.T, bin, dir string, args ...string) {
	t.Helper()
	logFile, err := os.Create(filepath.Join(dir, "prometheus.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("prometheus log (tail):\n%s", tailString(string(b), 3000))
		}
	})
}

func scrape(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// waitFor polls cond every second for at most limit; cond returns whether
// it holds and what it saw, which the failure reports.
func waitFor(t *testing.T, limit time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	deadline := time.Now().Add(limit)
	var saw string
	for {
		var ok bool
		if ok, saw = cond(); ok {
			return
		}
		if time.Now().After(deadline) || t.Context().Err() != nil {
			t.Fatalf("%s: not within %v (last seen: %s)", what, limit, saw)
		}
		time.Sleep(time.Second)
	}
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// testKey writes a decision signing key into dir and returns its path.
func testKey(t *testing.T, dir string) string {
	t.Helper()
	key := filepath.Join(dir, "decision.key")
	writeFile(t, key, testHexKey)
	return key
}

func tailString(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}
