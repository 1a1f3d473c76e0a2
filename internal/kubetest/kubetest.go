// Package kubetest starts a real Kubernetes control plane for tests: etcd
// and kube-apiserver, and optionally kube-controller-manager,
// kube-scheduler and kwok (fake nodes whose pods "run"). The binaries are
// built by .ci/kube/build.sh; BinDir finds them.
package kubetest

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	_ "embed" // kwok stages
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"k8s.io/client-go/rest"
)

// kwokStages are the node and pod lifecycles kwok plays: nodes become
// Ready, pods on them Running, deleted pods go away.
//
//go:embed kwok-stages.yaml
var kwokStages []byte

// AdminToken is the bearer token of the admin (system:masters) user.
const AdminToken = "augur-test-admin-token"

// Binaries are the programs .ci/kube/build.sh builds.
var Binaries = []string{"etcd", "kube-apiserver", "kube-controller-manager", "kube-scheduler", "kwok"}

// BinDir returns the directory with the binaries: $AUGUR_KUBE_BIN, or
// .ci/kube/bin of the repository this file is in. ok is false unless every
// one of Binaries is there.
func BinDir() (dir string, ok bool) {
	dir = os.Getenv("AUGUR_KUBE_BIN")
	if dir == "" {
		_, file, _, _ := runtime.Caller(0)
		dir = filepath.Join(filepath.Dir(file), "..", "..", ".ci", "kube", "bin")
	}
	for _, b := range Binaries {
		if _, err := os.Stat(filepath.Join(dir, b)); err != nil {
			return dir, false
		}
	}
	return dir, true
}

// Options selects what to start besides etcd and kube-apiserver.
type Options struct {
	// Controllers starts kube-controller-manager, kube-scheduler and kwok.
	Controllers bool
}

// Cluster is a running control plane. Stop it when done.
type Cluster struct {
	// Config is an admin client config.
	Config *rest.Config
	// Dir holds data, certificates, kubeconfig and each process's log.
	Dir   string
	procs []*exec.Cmd
}

// Start starts the control plane in a new temporary directory and waits for
// the API server to be ready (at most two minutes).
func Start(opts Options) (c *Cluster, err error) {
	bin, ok := BinDir()
	if !ok {
		return nil, fmt.Errorf("kube binaries not found in %s (run .ci/kube/build.sh)", bin)
	}
	dir, err := os.MkdirTemp("", "augur-kube-")
	if err != nil {
		return nil, err
	}
	c = &Cluster{Dir: dir}
	defer func() {
		if err != nil {
			c.Stop()
		}
	}()
	ports, err := FreePorts(3)
	if err != nil {
		return nil, err
	}
	etcdURL := "http://127.0.0.1:" + strconv.Itoa(ports[0])
	peerURL := "http://127.0.0.1:" + strconv.Itoa(ports[1])
	if err := c.start(bin, "etcd", "--name=default", "--data-dir="+filepath.Join(dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peerURL, "--initial-advertise-peer-urls="+peerURL,
		"--initial-cluster=default="+peerURL, "--unsafe-no-fsync=true", "--log-level=warn"); err != nil {
		return nil, err
	}
	saKey := filepath.Join(dir, "sa.key")
	if err := writeRSAKey(saKey); err != nil {
		return nil, err
	}
	tokens := filepath.Join(dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(AdminToken+",admin,admin-uid,system:masters\n"), 0o600); err != nil {
		return nil, err
	}
	host := "https://127.0.0.1:" + strconv.Itoa(ports[2])
	if err := c.start(bin, "kube-apiserver", "--etcd-servers="+etcdURL,
		"--cert-dir="+filepath.Join(dir, "certs"), "--secure-port="+strconv.Itoa(ports[2]),
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--service-cluster-ip-range=10.0.0.0/24", "--token-auth-file="+tokens,
		"--authorization-mode=RBAC", "--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+saKey, "--service-account-signing-key-file="+saKey,
		"--endpoint-reconciler-type=none", "--disable-admission-plugins=ServiceAccount",
		"--v=0"); err != nil {
		return nil, err
	}
	c.Config = &rest.Config{Host: host, BearerToken: AdminToken, QPS: 200, Burst: 400,
		TLSClientConfig: rest.TLSClientConfig{Insecure: true}}
	if err := c.waitReady(2 * time.Minute); err != nil {
		return nil, err
	}
	if !opts.Controllers {
		return c, nil
	}
	kubeconfig := filepath.Join(dir, "kubeconfig")
	if err := os.WriteFile(kubeconfig, Kubeconfig(host), 0o600); err != nil {
		return nil, err
	}
	if err := c.start(bin, "kube-controller-manager", "--kubeconfig="+kubeconfig, "--leader-elect=false",
		"--controllers=*", "--secure-port=0", "--service-account-private-key-file="+saKey,
		"--use-service-account-credentials=false", "--horizontal-pod-autoscaler-sync-period=1s",
		"--concurrent-deployment-syncs=5", "--v=0"); err != nil {
		return nil, err
	}
	if err := c.start(bin, "kube-scheduler", "--kubeconfig="+kubeconfig, "--leader-elect=false",
		"--secure-port=0", "--v=0"); err != nil {
		return nil, err
	}
	stages := filepath.Join(dir, "kwok-stages.yaml")
	if err := os.WriteFile(stages, kwokStages, 0o600); err != nil {
		return nil, err
	}
	if err := c.start(bin, "kwok", "--kubeconfig="+kubeconfig, "--config="+stages, "--manage-all-nodes=false",
		"--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake",
		"--node-ip=10.1.0.1", "--cidr=10.1.0.0/16", "--server-address="); err != nil {
		return nil, err
	}
	return c, nil
}

// Kubeconfig returns the admin's kubeconfig for the API server at server
// (the cluster's, or a proxy in front of it).
func Kubeconfig(server string) []byte { return []byte(fmt.Sprintf(kubeconfigTmpl, server, AdminToken)) }

const kubeconfigTmpl = `apiVersion: v1
kind: Config
clusters:
- name: test
  cluster:
    server: %s
    insecure-skip-tls-verify: true
users:
- name: admin
  user:
    token: %s
contexts:
- name: test
  context: {cluster: test, user: admin}
current-context: test
`

// Impersonate returns a copy of the admin config that acts as user in
// groups, so that RBAC applies to it exactly as to that identity.
func (c *Cluster) Impersonate(user string, groups ...string) *rest.Config {
	cfg := rest.CopyConfig(c.Config)
	cfg.Impersonate = rest.ImpersonationConfig{UserName: user, Groups: groups}
	return cfg
}

// Logs returns the last n bytes of each process's log, for failure messages.
func (c *Cluster) Logs(n int) string {
	var b strings.Builder
	for _, p := range c.procs {
		name := filepath.Base(p.Path)
		data, _ := os.ReadFile(filepath.Join(c.Dir, name+".log"))
		if len(data) > n {
			data = data[len(data)-n:]
		}
		fmt.Fprintf(&b, "==> %s <==\n%s\n", name, data)
	}
	return b.String()
}

// Stop kills every process (in reverse start order) and removes Dir.
func (c *Cluster) Stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { _ = p.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(5 * time.Second):
			_ = p.Process.Kill()
			<-done
		}
	}
	c.procs = nil
	if os.Getenv("AUGUR_KUBE_KEEP") == "" {
		_ = os.RemoveAll(c.Dir)
	}
}

func (c *Cluster) start(bin, name string, args ...string) error {
	log, err := os.Create(filepath.Join(c.Dir, name+".log"))
	if err != nil {
		return err
	}
	cmd := exec.Command(filepath.Join(bin, name), args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		log.Close()
		return fmt.Errorf("start %s: %w", name, err)
	}
	c.procs = append(c.procs, cmd)
	return nil
}

func (c *Cluster) waitReady(timeout time.Duration) error {
	tr, err := rest.TransportFor(c.Config)
	if err != nil {
		return err
	}
	hc := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	var last error
	for ctx.Err() == nil {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, c.Config.Host+"/readyz", nil)
		resp, err := hc.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("readyz: %s", resp.Status)
		}
		last = err
		time.Sleep(250 * time.Millisecond)
	}
	return errors.Join(fmt.Errorf("kube-apiserver not ready after %v", timeout), last, errors.New(c.Logs(3000)))
}

// FreePorts returns n loopback ports that were free (listened on at once,
// then closed).
func FreePorts(n int) ([]int, error) {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	var ports []int
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		ls = append(ls, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

func writeRSAKey(path string) error {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	b := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(k)})
	return os.WriteFile(path, b, 0o600)
}
