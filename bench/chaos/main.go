// Command chaos runs augur as separate processes on a three-node Apache
// Kafka cluster (KRaft, replication 3, min.insync.replicas 2) and a real
// kube-apiserver with kwok, injects faults on a schedule while a generator
// sends remote writes, and has an independent checker judge the result.
// `make chaos` runs it; CHAOS_PROFILE=short (the default, about 20 minutes),
// long (a 30-minute soak with the same faults at half the capacity) or
// capacity (no faults; the rate raised in steps until the deployment gives
// way).
//
// The processes: two `augur ingest` behind the generator, three `augur
// stream`, two `augur act` with leader election in enforce mode on the
// namespace "chaos". A process that exits is started again after 3 s, as
// a Deployment's kubelet would.
//
// The last line printed is the summary:
//
//	chaos: faults=N samples=N lost=N duplicates=N unaudited=N double_applied=N max_recovery_s=X
//
// and the exit status is 0 only when every invariant holds.
package main

import (
	"cmp"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/augur-ops/augur/internal/kubetest"
)

// profile is how long a run lasts, how much it sends and when faults come.
type profile struct {
	name      string
	duration  time.Duration // of the generator
	rate      float64       // samples per second sent (capacity: the first step's)
	workloads int
	faults    []fault
	grayFrom  time.Duration // the slow zone's episode, from the start
	grayTo    time.Duration
}

func profiles(name string) (profile, error) {
	short := []fault{
		{at: 3 * time.Minute, name: "SIGKILL ingest-1", kind: "kill ingest", target: "ingest-1"},
		{at: 4 * time.Minute, name: "SIGKILL stream-2", kind: "kill stream", target: "stream-2"},
		{at: 5 * time.Minute, name: "SIGKILL the actuator leader", kind: "kill act leader"},
		{at: 6 * time.Minute, name: "SIGKILL broker kafka-2, restart after 15s", kind: "kill broker", target: "kafka-2", hold: 15 * time.Second},
		{at: 7*time.Minute + 30*time.Second, name: "SIGSTOP broker kafka-3 for 25s", kind: "pause broker", target: "kafka-3", hold: 25 * time.Second},
		{at: 9 * time.Minute, name: "Kubernetes API refuses for 30s", kind: "kube refuse", hold: 30 * time.Second},
		{at: 10*time.Minute + 30*time.Second, name: "Kubernetes API slow (1.5s per read) for 45s", kind: "kube slow", hold: 45 * time.Second},
		{at: 12 * time.Minute, name: "SIGKILL stream-1 and ingest-2", kind: "kill stream+ingest", target: "stream-1,ingest-2"},
		{at: 13 * time.Minute, name: "SIGKILL the actuator leader mid-action (10 s into 30 s of a slow API)", kind: "kill act leader mid-action", hold: 30 * time.Second},
	}
	switch name {
	case "short", "":
		return profile{name: "short", duration: 14*time.Minute + 30*time.Second, rate: 330, workloads: 4, faults: short,
			grayFrom: 8 * time.Minute, grayTo: 10 * time.Minute}, nil
	case "long":
		var long []fault
		for _, f := range short {
			f.at = f.at*2 + time.Minute
			long = append(long, f)
		}
		// Half of this deployment's capacity on a 2-core machine, as
		// CHAOS_PROFILE=capacity measured it (bench/RESULTS-reliability.md);
		// -rate sets another.
		return profile{name: "long", duration: 30 * time.Minute, rate: soakRate, workloads: 4, faults: long,
			grayFrom: 17 * time.Minute, grayTo: 20 * time.Minute}, nil
	case "capacity":
		return profile{name: "capacity", duration: time.Duration(rampSteps) * rampStep, rate: rampFrom, workloads: 4,
			grayFrom: 1<<62 - 1, grayTo: 1<<62 - 1}, nil
	}
	return profile{}, fmt.Errorf("CHAOS_PROFILE %q: want short, long or capacity", name)
}

func main() {
	prof := flag.String("profile", cmp.Or(os.Getenv("CHAOS_PROFILE"), "short"), "short, long or capacity (env CHAOS_PROFILE)")
	rate := flag.Float64("rate", 0, "samples per second the generator sends (default: the profile's)")
	out := flag.String("out", "", "directory for the run's CSV files and pictures (default: the work directory)")
	keep := flag.Bool("keep", false, "keep the work directory (logs of every process)")
	interval := flag.Duration("interval", 5*time.Second, "scrape interval of the generator")
	flag.Parse()
	p, err := profiles(*prof)
	if err != nil {
		fmt.Fprintln(os.Stderr, "chaos:", err)
		os.Exit(2)
	}
	if *rate > 0 {
		p.rate = *rate
	}
	code := run(p, *out, *keep, *interval)
	os.Exit(code)
}

func logf(format string, args ...any) {
	fmt.Printf("chaos: %s %s\n", time.Now().UTC().Format("15:04:05"), fmt.Sprintf(format, args...))
}

// repoRoot is the repository this file is in.
func repoRoot() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// harness is a running cluster, its augur processes and the generator.
type harness struct {
	dir      string
	kafka    *kafkaCluster
	kube     *kubetest.Cluster
	cs       kubernetes.Interface
	proxy    *apiProxy
	procs    map[string]*proc // augur processes by name
	stopping chan struct{}
	wg       sync.WaitGroup
	gen      *generator
	adm      *kadm.Client
	admCl    *kgo.Client
}

func run(p profile, outDir string, keep bool, interval time.Duration) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "augur-chaos-")
	if err != nil {
		logf("%v", err)
		return 1
	}
	if outDir == "" {
		outDir = dir
	}
	h := &harness{dir: dir, procs: map[string]*proc{}, stopping: make(chan struct{})}
	defer func() {
		h.shutdown()
		if keep {
			logf("work directory kept: %s", dir)
		} else {
			_ = os.RemoveAll(dir)
		}
	}()
	if err := h.setUp(ctx, p, interval); err != nil {
		logf("set-up: %v (logs in %s)", err, dir)
		keep = true
		return 1
	}
	res, err := h.play(ctx, p)
	if err != nil {
		logf("run: %v (logs in %s)", err, dir)
		keep = true
		return 1
	}
	if err := writeResults(outDir, p, res); err != nil {
		logf("results: %v", err)
	}
	// The augur processes' logs go with the results.
	for name := range h.procs {
		if b, err := os.ReadFile(filepath.Join(dir, name+".log")); err == nil {
			_ = os.WriteFile(filepath.Join(outDir, "chaos-"+p.name+"-"+name+".log"), b, 0o644)
		}
	}
	if !res.ok() {
		keep = true
	}
	res.print()
	if !res.ok() {
		return 1
	}
	return 0
}

// setUp starts Kafka, Kubernetes, the augur processes and waits until
// the pipeline answers.
func (h *harness) setUp(ctx context.Context, p profile, interval time.Duration) error {
	root := repoRoot()
	bin := filepath.Join(h.dir, "augur")
	logf("building augur")
	build := exec.Command("go", "build", "-o", bin, "./cmd/augur")
	build.Dir, build.Stdout, build.Stderr = root, os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		return fmt.Errorf("build augur: %w", err)
	}
	if _, ok := kubetest.BinDir(); !ok {
		logf("building the Kubernetes control plane (.ci/kube/build.sh)")
		b := exec.Command("bash", filepath.Join(root, ".ci", "kube", "build.sh"))
		b.Stdout, b.Stderr = os.Stderr, os.Stderr
		if err := b.Run(); err != nil {
			return fmt.Errorf("build kube: %w", err)
		}
	}
	fetch := exec.Command("bash", filepath.Join(root, ".ci", "kafka", "fetch.sh"))
	fetch.Stderr = os.Stderr
	libOut, err := fetch.Output()
	if err != nil {
		return fmt.Errorf("fetch kafka: %w", err)
	}
	logf("starting 3 Kafka nodes")
	h.kafka, err = startKafka(h.dir, strings.TrimSpace(string(libOut)), 3, "320m")
	if err != nil {
		return err
	}
	h.admCl, err = kgo.NewClient(kgo.SeedBrokers(strings.Split(h.kafka.brokers(), ",")...))
	if err != nil {
		return err
	}
	h.adm = kadm.NewClient(h.admCl)
	logf("Kafka at %s; starting kube-apiserver, etcd, controllers and kwok", h.kafka.brokers())
	h.kube, err = kubetest.Start(kubetest.Options{Controllers: true})
	if err != nil {
		return err
	}
	h.cs, err = kubernetes.NewForConfig(h.kube.Config)
	if err != nil {
		return err
	}
	if err := h.workloads(ctx, p.workloads); err != nil {
		return err
	}
	u, err := url.Parse(h.kube.Config.Host)
	if err != nil {
		return err
	}
	h.proxy, err = startProxy(u.Host)
	if err != nil {
		return err
	}
	kubeconfig := filepath.Join(h.dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, kubetest.Kubeconfig("https://"+h.proxy.addr()), 0o600); err != nil {
		return err
	}
	rulesFile := filepath.Join(h.dir, "rules.yaml")
	if err := os.WriteFile(rulesFile, []byte(rulesYAML(p.workloads)), 0o644); err != nil {
		return err
	}
	key := filepath.Join(h.dir, "decision.key")
	if err := os.WriteFile(key, []byte("c4a05dec15104bee0123456789abcdef0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		return err
	}
	ports, err := kubetest.FreePorts(7)
	if err != nil {
		return err
	}
	brokers := h.kafka.brokers()
	var urls []string
	for i := 1; i <= 2; i++ {
		listen := fmt.Sprintf("127.0.0.1:%d", ports[i-1])
		urls = append(urls, "http://"+listen+"/api/v1/write")
		h.add(bin, fmt.Sprintf("ingest-%d", i), "ingest", "-brokers", brokers, "-listen", listen, "-rules", rulesFile, "-partitions", "6")
	}
	if err := h.waitHTTP(ctx, urls, 2*time.Minute); err != nil {
		return err
	}
	for i := 1; i <= 3; i++ {
		h.add(bin, fmt.Sprintf("stream-%d", i), "stream", "-brokers", brokers, "-rules", rulesFile, "-decision-key-file", key,
			"-transactional-id", fmt.Sprintf("augur-stream-%d", i), "-metrics-addr", fmt.Sprintf("127.0.0.1:%d", ports[1+i]))
	}
	for i := 1; i <= 2; i++ {
		h.add(bin, fmt.Sprintf("act-%d", i), "act", "-brokers", brokers, "-decision-key-file", key, "-kubeconfig", kubeconfig,
			"-leader-elect", "-mode", "enforce", "-actor", fmt.Sprintf("act-%d", i), "-allow-namespaces", "chaos",
			"-metrics-addr", fmt.Sprintf("127.0.0.1:%d", ports[4+i]))
	}
	h.gen = &generator{urls: urls, interval: interval, workloads: p.workloads,
		client: &http.Client{Timeout: 30 * time.Second}, acked: map[string]map[int64]float64{},
		counters: map[string]float64{}, rng: rand.New(rand.NewPCG(1, 2))}
	h.gen.filler.Store(int64(fillerFor(p.rate, interval, p.workloads)))
	return nil
}

// rulesYAML: a scaling rule per workload (10 requests/s per pod), the
// web service's gray failure, the queues' anomalies.
func rulesYAML(workloads int) string {
	var b strings.Builder
	b.WriteString("rules:\n")
	for w := range workloads {
		fmt.Fprintf(&b, `  - name: web-%d
    scaling:
      selector: 'app_requests_total{app="web-%d"}'
      capacity_per_pod: 10
      window: 15s
      horizon: 2m
      min_replicas: 2
      max_replicas: 20
      target: {namespace: chaos, name: web-%d}
`, w, w, w)
	}
	b.WriteString(`  - name: web-zones
    gray_failure:
      selector: '{__name__=~"http_requests_total|http_request_duration_seconds_.*", job="web"}'
      zone_label: zone
      resource_arn: arn:aws:elasticloadbalancing:us-east-1:123456789012:loadbalancer/app/web/1
      window: 15s
  - name: queues
    anomaly:
      selector: 'queue_depth'
`)
	return b.String()
}

// workloads creates a kwok node, the namespaces and the Deployments the
// scaling rules target, two replicas each.
func (h *harness) workloads(ctx context.Context, n int) error {
	capacity := corev1.ResourceList{corev1.ResourceCPU: resource.MustParse("64"), corev1.ResourceMemory: resource.MustParse("256Gi"), corev1.ResourcePods: resource.MustParse("500")}
	if _, err := h.cs.CoreV1().Nodes().Create(ctx, &corev1.Node{
		ObjectMeta: metav1.ObjectMeta{Name: "kwok-1", Annotations: map[string]string{"kwok.x-k8s.io/node": "fake"},
			Labels: map[string]string{"type": "kwok", "kubernetes.io/hostname": "kwok-1"}},
		Status: corev1.NodeStatus{Capacity: capacity, Allocatable: capacity},
	}, metav1.CreateOptions{}); err != nil {
		return err
	}
	for _, ns := range []string{"chaos", "augur-system"} {
		if _, err := h.cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	for w := range n {
		two := int32(2)
		name := fmt.Sprintf("web-%d", w)
		labels := map[string]string{"app": name}
		if _, err := h.cs.AppsV1().Deployments("chaos").Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: "chaos"},
			Spec: appsv1.DeploymentSpec{Replicas: &two, Selector: &metav1.LabelSelector{MatchLabels: labels},
				Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{
					Containers: []corev1.Container{{Name: "app", Image: "registry.k8s.io/pause:3.10"}}}}},
		}, metav1.CreateOptions{}); err != nil {
			return err
		}
	}
	return nil
}

// add starts an augur process and supervises it: started again 3 s after
// it exits, until the harness stops.
func (h *harness) add(bin, name string, args ...string) {
	p := &proc{name: name, bin: bin, args: args, logPath: filepath.Join(h.dir, name+".log")}
	h.procs[name] = p
	if err := p.start(); err != nil {
		logf("%v", err)
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		for {
			p.wait(time.Duration(1<<62 - 1))
			select {
			case <-h.stopping:
				return
			case <-time.After(3 * time.Second):
			}
			select {
			case <-h.stopping:
				return
			default:
			}
			if err := p.start(); err != nil {
				logf("restart %s: %v", name, err)
			}
		}
	}()
}

func (h *harness) waitHTTP(ctx context.Context, urls []string, d time.Duration) error {
	deadline := time.Now().Add(d)
	for _, u := range urls {
		for {
			resp, err := http.Get(strings.TrimSuffix(u, "/api/v1/write") + "/readyz")
			if err == nil {
				resp.Body.Close()
				if resp.StatusCode == http.StatusOK {
					break
				}
			}
			if time.Now().After(deadline) || ctx.Err() != nil {
				return fmt.Errorf("%s not ready: %w", u, err)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	return nil
}

// shutdown stops the augur processes (SIGTERM), then Kubernetes and Kafka.
func (h *harness) shutdown() {
	select {
	case <-h.stopping:
	default:
		close(h.stopping)
	}
	var wg sync.WaitGroup
	for _, p := range h.procs {
		wg.Add(1)
		go func() { defer wg.Done(); p.term(15 * time.Second) }()
	}
	wg.Wait()
	h.wg.Wait()
	if h.admCl != nil {
		h.admCl.Close()
	}
	if h.proxy != nil {
		h.proxy.close()
	}
	if h.kube != nil {
		h.kube.Stop()
	}
	if h.kafka != nil {
		h.kafka.stop()
	}
}

// lags returns the stream group's lag on augur.samples and the
// actuators' on augur.decisions (-1 when unknown). augur.decisions is
// written in transactions: a partition's end offset is one past the last
// commit marker, which a read-committed consumer never commits past, so a
// partition caught up shows a lag of 1 there; the actuators' lag counts
// what is beyond that.
func (h *harness) lags(ctx context.Context) (stream, act int64) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	stream, act = -1, -1
	lags, err := h.adm.Lag(ctx, "augur-stream", "augur-act")
	if err != nil {
		return
	}
	for g, l := range lags {
		if l.Error() != nil {
			continue
		}
		var total int64
		for _, ps := range l.Lag {
			for _, ml := range ps {
				switch {
				case ml.Err != nil:
				case g == "augur-act":
					total += max(0, ml.Lag-1)
				default:
					total += ml.Lag
				}
			}
		}
		switch g {
		case "augur-stream":
			stream = total
		case "augur-act":
			act = total
		}
	}
	return
}

// streamCommits returns the stream group's committed offset per
// partition of augur.samples.
func (h *harness) streamCommits(ctx context.Context) map[int32]int64 {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	out := map[int32]int64{}
	offs, err := h.adm.FetchOffsets(ctx, "augur-stream")
	if err != nil {
		return out
	}
	offs.Each(func(o kadm.OffsetResponse) {
		if o.Topic == "augur.samples" && o.Err == nil {
			out[o.Partition] = o.At
		}
	})
	return out
}

// leader is the actuator holding the Lease.
func (h *harness) leader(ctx context.Context) string {
	l, err := h.cs.CoordinationV1().Leases("augur-system").Get(ctx, "augur-actuator", metav1.GetOptions{})
	if err != nil || l.Spec.HolderIdentity == nil {
		return ""
	}
	return *l.Spec.HolderIdentity
}

// sample is one row of the monitor.
type sample struct {
	at        time.Duration
	streamLag int64
	actLag    int64
	rss       map[string]int64
	acked     int64
	restarts  int
	leader    string
	replicas  map[string]int32
}

func sortedNames(m map[string]*proc) []string {
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}
