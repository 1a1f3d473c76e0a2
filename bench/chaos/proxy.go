package main

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Modes of the Kubernetes API proxy.
const (
	proxyPass   = iota
	proxySlow   // every read from the API server is held back by proxyDelay
	proxyRefuse // new connections are closed at once, open ones cut
)

const proxyDelay = 1500 * time.Millisecond

// apiProxy is a TCP proxy in front of the kube-apiserver (TLS passes
// through): the actuators reach the API through it, so the harness can make
// the API slow or refuse it.
type apiProxy struct {
	ln     net.Listener
	target string
	mode   atomic.Int32
	mu     sync.Mutex
	conns  map[net.Conn]struct{}
}

func startProxy(target string) (*apiProxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &apiProxy{ln: ln, target: target, conns: map[net.Conn]struct{}{}}
	go p.serve()
	return p, nil
}

func (p *apiProxy) addr() string { return p.ln.Addr().String() }

func (p *apiProxy) setMode(m int32) {
	p.mode.Store(m)
	if m == proxyRefuse {
		p.mu.Lock()
		for c := range p.conns {
			_ = c.Close()
		}
		p.mu.Unlock()
	}
}

func (p *apiProxy) serve() {
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		if p.mode.Load() == proxyRefuse {
			_ = c.Close()
			continue
		}
		go p.pipe(c)
	}
}

func (p *apiProxy) track(c net.Conn, on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if on {
		p.conns[c] = struct{}{}
	} else {
		delete(p.conns, c)
	}
}

func (p *apiProxy) pipe(c net.Conn) {
	up, err := net.DialTimeout("tcp", p.target, 5*time.Second)
	if err != nil {
		_ = c.Close()
		return
	}
	p.track(c, true)
	p.track(up, true)
	defer func() {
		p.track(c, false)
		p.track(up, false)
		_ = c.Close()
		_ = up.Close()
	}()
	done := make(chan struct{}, 2)
	go func() { _, _ = io.Copy(up, c); done <- struct{}{} }()
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := up.Read(buf)
			if n > 0 {
				if p.mode.Load() == proxySlow {
					time.Sleep(proxyDelay)
				}
				if _, werr := c.Write(buf[:n]); werr != nil {
					break
				}
			}
			if err != nil {
				break
			}
		}
		done <- struct{}{}
	}()
	<-done
}

func (p *apiProxy) close() { p.ln.Close(); p.setMode(proxyRefuse) }
