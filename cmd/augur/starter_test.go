package main

import (
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStarterRulesDecideOnPrometheus: `augur run` with no rules file and a
// real Prometheus (Debian's) scraping itself and remote-writing to it,
// nothing else: the starter rules make a first decision on Prometheus' own
// HTTP load within three minutes, and the console's API lists the rules.
func TestStarterRulesDecideOnPrometheus(t *testing.T) {
	if testing.Short() {
		t.Skip("starts Prometheus")
	}
	promBin := needBinary(t, "prometheus", "apt-get install prometheus")
	dir := t.TempDir()
	listen := freePort(t)
	cfgFile := filepath.Join(dir, "augur.yaml")
	writeFile(t, cfgFile, fmt.Sprintf("listen: %s\ndata_dir: %s\nkafka:\n  embedded_addr: %s\n", listen, filepath.Join(dir, "data"), freePort(t)))
	_, logs := startRun(t, cfgFile, listen)
	start := time.Now()
	startProm(t, promBin, "", "http://"+listen+"/api/v1/write")
	waitFor(t, 3*time.Minute, "a decision of the starter rule prometheus-http-load", func() (bool, string) {
		body := scrape(t, "http://"+listen+"/api/v1/decisions?rule=prometheus-http-load")
		return strings.Contains(body, `"kind":"scale"`), body
	})
	t.Logf("first starter-rule decision %v after Prometheus started", time.Since(start).Round(time.Second))
	rules := scrape(t, "http://"+listen+"/api/v1/rules")
	if !strings.Contains(rules, `"prometheus-http-load"`) {
		t.Errorf("rules API: %s", rules)
	}
	if !strings.Contains(logs.String(), "starter rules") {
		t.Error("augur run did not say it runs the starter rules")
	}
}
