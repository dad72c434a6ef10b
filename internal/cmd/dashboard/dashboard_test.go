package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/promql/parser"

	"github.com/akminio/akminio/internal/e2eenv/e2eenvtest"
)

const committed = "../../../deploy/grafana/akminio.json"

// TestDashboardIsGenerated regenerates the dashboard and compares it with the committed
// deploy/grafana/akminio.json: a panel changed in Go without `make dashboard` fails here.
func TestDashboardIsGenerated(t *testing.T) {
	got, err := build(panels)
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(committed)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("deploy/grafana/akminio.json differs from what internal/cmd/dashboard generates: run `make dashboard`\n%s",
			firstDifference(string(want), string(got)))
	}
	// Grafana can read it back: panels by type, every panel with a query.
	var d dashboard.Dashboard
	if err := json.Unmarshal(want, &d); err != nil {
		t.Fatalf("the committed dashboard does not decode: %v", err)
	}
	if len(d.Panels) != len(panels) {
		t.Errorf("%d panels in the committed file, %d generated", len(d.Panels), len(panels))
	}
}

func firstDifference(a, b string) string {
	al, bl := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(al) || i < len(bl); i++ {
		var x, y string
		if i < len(al) {
			x = al[i]
		}
		if i < len(bl) {
			y = bl[i]
		}
		if x != y {
			return fmt.Sprintf("line %d:\n  committed: %s\n  generated: %s", i+1, x, y)
		}
	}
	return ""
}

// TestDashboardQueriesExportedMetrics: every metric (and label) a panel or variable of the
// generated dashboard queries is one a running akminio exports on /metrics.
func TestDashboardQueriesExportedMetrics(t *testing.T) {
	data, err := build(panels)
	if err != nil {
		t.Fatal(err)
	}
	families := liveMetrics(t)
	exprs, err := dashboardQueries(data)
	if err != nil {
		t.Fatal(err)
	}
	if len(exprs) < len(panels)+1 {
		t.Fatalf("found %d queries in the dashboard, want one per panel and the $instance variable:\n%s", len(exprs), strings.Join(exprs, "\n"))
	}
	for _, p := range checkQueries(exprs, families) {
		t.Error(p)
	}
}

// badPanel queries a metric akminio does not export and a label its metric lacks.
func badPanel() cog.Builder[dashboard.Panel] {
	return seriesPanel("Deliberately wrong", "").
		WithTarget(query(`sum(rate(akminio_no_such_metric_total`+sel+`[5m]))`, "")).
		WithTarget(query(`akminio_backend_up{sytem="minio"}`, "")).
		WithTarget(query(`sum by (sytem) (akminio_backend_up)`, ""))
}

// TestDashboardCheckCatchesUnknownMetric: the same check, on the dashboard plus a panel with
// deliberately wrong queries, reports each of them (and nothing of the real panels).
func TestDashboardCheckCatchesUnknownMetric(t *testing.T) {
	data, err := build(append(slices.Clone(panels), badPanel))
	if err != nil {
		t.Fatal(err)
	}
	exprs, err := dashboardQueries(data)
	if err != nil {
		t.Fatal(err)
	}
	problems := checkQueries(exprs, liveMetrics(t))
	want := []string{
		`sum(rate(akminio_no_such_metric_total{instance=~"$instance"}[5m])): akminio does not export akminio_no_such_metric_total`,
		`akminio_backend_up{sytem="minio"}: akminio_backend_up has no label sytem`,
		`sum by (sytem) (akminio_backend_up): by (sytem): akminio_backend_up has no label sytem`,
	}
	if !slices.Equal(problems, want) {
		t.Errorf("problems:\n%s\nwant:\n%s", strings.Join(problems, "\n"), strings.Join(want, "\n"))
	}
}

// dashboardQueries returns every PromQL expression in a dashboard: the panels' targets'
// "expr" and the series selector of each label_values(...) query variable.
func dashboardQueries(data []byte) ([]string, error) {
	var d struct {
		Panels []struct {
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
		Templating struct {
			List []struct {
				Type  string `json:"type"`
				Query any    `json:"query"`
			} `json:"list"`
		} `json:"templating"`
	}
	if err := json.Unmarshal(data, &d); err != nil {
		return nil, err
	}
	var out []string
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			out = append(out, tg.Expr)
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		q, _ := v.Query.(string)
		m := labelValuesRE.FindStringSubmatch(q)
		if m == nil {
			return nil, fmt.Errorf("query variable %q: not label_values(<selector>, <label>)", q)
		}
		out = append(out, fmt.Sprintf("group by (%s) (%s)", m[2], m[1]))
	}
	return out, nil
}

var labelValuesRE = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

// Labels Prometheus adds to every scraped series.
var targetLabels = []string{"instance", "job"}

// checkQueries parses each expression (Grafana's variables replaced) with Prometheus's own
// PromQL parser and lists the problems: a metric families does not hold, a label matcher or
// a by (...) label that the selected metrics lack.
func checkQueries(exprs []string, families map[string]labelSet) []string {
	grafanaVars := strings.NewReplacer("$__rate_interval", "5m", "$__range", "1d", "$__interval", "1m", "$instance", ".*")
	var problems []string
	for _, expr := range exprs {
		e, err := parser.ParseExpr(grafanaVars.Replace(expr))
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s: not PromQL: %v", expr, err))
			continue
		}
		parser.Inspect(e, func(node parser.Node, _ []parser.Node) error {
			switch n := node.(type) {
			case *parser.VectorSelector:
				labels, ok := families[n.Name]
				if !ok {
					problems = append(problems, fmt.Sprintf("%s: akminio does not export %s", expr, n.Name))
					return nil
				}
				for _, m := range n.LabelMatchers {
					if m.Name != model.MetricNameLabel && !labels.has(m.Name) {
						problems = append(problems, fmt.Sprintf("%s: %s has no label %s", expr, n.Name, m.Name))
					}
				}
			case *parser.AggregateExpr:
				if n.Without {
					return nil
				}
				parser.Inspect(n.Expr, func(inner parser.Node, _ []parser.Node) error {
					vs, ok := inner.(*parser.VectorSelector)
					if !ok {
						return nil
					}
					labels, ok := families[vs.Name]
					if !ok {
						return nil // reported above
					}
					for _, g := range n.Grouping {
						if !labels.has(g) {
							problems = append(problems, fmt.Sprintf("%s: by (%s): %s has no label %s", expr, strings.Join(n.Grouping, ", "), vs.Name, g))
						}
					}
					return nil
				})
			}
			return nil
		})
	}
	return problems
}

// labelSet is the label names a metric's series carry.
type labelSet map[string]bool

func (l labelSet) has(name string) bool { return l[name] || slices.Contains(targetLabels, name) }

var (
	liveOnce sync.Once
	liveFams map[string]labelSet
	liveErr  error
)

// liveMetrics starts the real akminio binary (`akminio run`) against the real MinIO and the
// authentik simulator, waits for its first run to succeed, and reads its /metrics: the
// series names (a histogram's _bucket, _sum and _count included) and their label names.
// Once per test binary.
func liveMetrics(t *testing.T) map[string]labelSet {
	t.Helper()
	liveOnce.Do(func() { liveFams, liveErr = scrapeLiveDaemon(t) })
	if liveErr != nil {
		t.Fatal(liveErr)
	}
	return liveFams
}

func scrapeLiveDaemon(t *testing.T) (map[string]labelSet, error) {
	e := e2eenvtest.Start(t)
	listen := e.DefaultConfig()["http"].(map[string]any)["listen"].(string)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, e2eenvtest.Binary(t), "run", "--config", e.ConfigPath)
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AKMINIO_") && !strings.HasPrefix(kv, "CREDENTIALS_DIRECTORY=") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	logPath := filepath.Join(e.Dir, "akminio.log")
	log, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		cancel()
		<-exited
	}()
	fail := func(format string, args ...any) (map[string]labelSet, error) {
		b, _ := os.ReadFile(logPath)
		return nil, fmt.Errorf(format+"\nakminio log:\n%s", append(args, b)...)
	}

	// Ready once the first run has finished; its metrics are then all set.
	base := "http://" + listen
	deadline := time.Now().Add(2 * time.Minute)
	for {
		resp, err := http.Get(base + "/readyz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case err := <-exited:
			exited <- err
			return fail("akminio run exited before it was ready: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fail("akminio run not ready on %s/readyz after 2 minutes", base)
		}
	}
	resp, err := http.Get(base + "/metrics")
	if err != nil {
		return fail("GET /metrics: %v", err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	tp := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := tp.TextToMetricFamilies(bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("parse /metrics: %w", err)
	}
	out := map[string]labelSet{}
	for name, mf := range mfs {
		labels := labelSet{}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				labels[lp.GetName()] = true
			}
		}
		switch mf.GetType() {
		default:
			out[name] = labels
		case dto.MetricType_HISTOGRAM: // no series of the family's own name
			out[name+"_bucket"] = labelSet{"le": true}
			for l := range labels {
				out[name+"_bucket"][l] = true
			}
			out[name+"_sum"], out[name+"_count"] = labels, labels
		case dto.MetricType_SUMMARY:
			out[name+"_sum"], out[name+"_count"] = labels, labels
		}
	}
	return out, nil
}
