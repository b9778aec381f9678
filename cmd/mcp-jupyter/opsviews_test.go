package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"text/template"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// The operators' views: a Grafana dashboard and Prometheus alert rules.
const (
	dashboardPath  = "../../docs/grafana/mcp-jupyter.json"
	alertRulesPath = "../../docs/prometheus/alerts.yaml"
)

// promqlSkipped are the words of PromQL that are not metric names:
// aggregations (which may be followed by "by (...)" before their
// parenthesis), binary operators and modifiers, and the number literals.
var promqlSkipped = map[string]bool{
	"sum": true, "min": true, "max": true, "avg": true, "group": true, "stddev": true, "stdvar": true, "count": true,
	"count_values": true, "bottomk": true, "topk": true, "quantile": true, "limitk": true, "limit_ratio": true,
	"and": true, "or": true, "unless": true, "bool": true, "offset": true, "atan2": true, "inf": true, "nan": true,
}

// promqlGrouping are modifiers whose parenthesis holds label names.
var promqlGrouping = map[string]bool{"by": true, "without": true, "on": true, "ignoring": true, "group_left": true, "group_right": true}

// promqlMetricNames returns the metric names a PromQL expression selects:
// identifiers not followed by "(" (functions), outside label matchers
// ({...}), ranges ([...]) and grouping lists (by/on (...)), that are not
// keywords. Grafana's $variables are skipped. It refuses unbalanced
// brackets, unterminated strings and characters PromQL does not have, so a
// broken expression fails rather than yielding nothing.
func promqlMetricNames(expr string) ([]string, error) {
	var names []string
	isIdentStart := func(b byte) bool { return b == '_' || b == ':' || (b|0x20 >= 'a' && b|0x20 <= 'z') }
	isIdent := func(b byte) bool { return isIdentStart(b) || (b >= '0' && b <= '9') }
	// skipTo returns the index after the bracket closing the one at i,
	// skipping strings inside.
	skipTo := func(i int, open, close byte) (int, error) {
		depth := 0
		for j := i; j < len(expr); j++ {
			switch c := expr[j]; c {
			case '"', '\'', '`':
				end, err := skipString(expr, j)
				if err != nil {
					return 0, err
				}
				j = end - 1
			case open:
				depth++
			case close:
				depth--
				if depth == 0 {
					return j + 1, nil
				}
			}
		}
		return 0, fmt.Errorf("%q: %c at %d is never closed", expr, open, i)
	}
	nextNonSpace := func(i int) int {
		for i < len(expr) && strings.ContainsRune(" \t\r\n", rune(expr[i])) {
			i++
		}
		return i
	}
	depth := 0
	for i := 0; i < len(expr); {
		c := expr[i]
		switch {
		case strings.ContainsRune(" \t\r\n", rune(c)):
			i++
		case c == '"' || c == '\'' || c == '`':
			end, err := skipString(expr, i)
			if err != nil {
				return nil, err
			}
			i = end
		case c == '{':
			end, err := skipTo(i, '{', '}')
			if err != nil {
				return nil, err
			}
			i = end
		case c == '[':
			end, err := skipTo(i, '[', ']')
			if err != nil {
				return nil, err
			}
			i = end
		case c == '(':
			depth++
			i++
		case c == ')':
			if depth--; depth < 0 {
				return nil, fmt.Errorf("%q: ) at %d closes nothing", expr, i)
			}
			i++
		case c == '$': // a Grafana variable
			i++
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
		case (c >= '0' && c <= '9') || (c == '.' && i+1 < len(expr) && expr[i+1] >= '0' && expr[i+1] <= '9'):
			for i < len(expr) && (isIdent(expr[i]) || expr[i] == '.') {
				i++
			}
		case isIdentStart(c):
			start := i
			for i < len(expr) && isIdent(expr[i]) {
				i++
			}
			word := expr[start:i]
			next := nextNonSpace(i)
			switch lower := strings.ToLower(word); {
			case promqlGrouping[lower]:
				if next < len(expr) && expr[next] == '(' {
					end, err := skipTo(next, '(', ')')
					if err != nil {
						return nil, err
					}
					i = end
				}
			case promqlSkipped[lower]:
			case next < len(expr) && expr[next] == '(':
				// a function
			default:
				names = append(names, word)
			}
		case c == '#': // a comment, to the end of the line
			for i < len(expr) && expr[i] != '\n' {
				i++
			}
		case strings.ContainsRune("+-*/%^=!<>,@", rune(c)):
			i++
		default:
			return nil, fmt.Errorf("%q: unexpected %q at %d", expr, c, i)
		}
	}
	if depth != 0 {
		return nil, fmt.Errorf("%q: %d parenthesis never closed", expr, depth)
	}
	return names, nil
}

// skipString returns the index after the string literal starting at i.
func skipString(s string, i int) (int, error) {
	q := s[i]
	for j := i + 1; j < len(s); j++ {
		switch {
		case s[j] == '\\' && q != '`':
			j++
		case s[j] == q:
			return j + 1, nil
		}
	}
	return 0, fmt.Errorf("%q: string at %d never ends", s, i)
}

// TestPromQLMetricNames: the extractor the views' test rests on finds the
// metrics, and only them, in the shapes the views use, and refuses broken
// expressions.
func TestPromQLMetricNames(t *testing.T) {
	for _, c := range []struct {
		expr string
		want []string
	}{
		{`up`, []string{"up"}},
		{`mcp_jupyter_kernels{state="dead", instance=~"$instance"} > 0`, []string{"mcp_jupyter_kernels"}},
		{`histogram_quantile(0.95, sum by (instance, le) (rate(checkpoint_save_duration_seconds_bucket[6h])))
		  * on (instance) sum by (instance) (mcp_jupyter_kernels{state="running"}) > 20`,
			[]string{"checkpoint_save_duration_seconds_bucket", "mcp_jupyter_kernels"}},
		{`sum without (le) (rate(a_total[$__rate_interval])) / ignoring(x) group_left(y) b offset 5m`, []string{"a_total", "b"}},
		{`increase(x_total[1h]) - increase(y_total[1h]) > 5`, []string{"x_total", "y_total"}},
		{`predict_linear(free[6h], 24 * 3600) < on (instance) min_free`, []string{"free", "min_free"}},
		{`absent(last_seq) or vector(1e9) and bool 0x1F`, []string{"last_seq"}},
		{`sum(m{l="a}b{c"})`, []string{"m"}},
		{`topk(3, x) unless y`, []string{"x", "y"}},
		{`job:rate5m:sum`, []string{"job:rate5m:sum"}},
		{"x # y z\n+ w @ end()", []string{"x", "w"}},
	} {
		got, err := promqlMetricNames(c.expr)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: got %q, %v; want %q", c.expr, got, err, c.want)
		}
	}
	for _, bad := range []string{`sum(rate(x[5m])`, `x{a="b"`, `x[5m`, `x)`, `x{a="b}`, `x; y`, `x & y`} {
		if got, err := promqlMetricNames(bad); err == nil {
			t.Errorf("%q: accepted (%q)", bad, got)
		}
	}
}

// alertRules is a Prometheus rule file, strictly.
type alertRules struct {
	Groups []struct {
		Name     string `yaml:"name"`
		Interval string `yaml:"interval"`
		Rules    []struct {
			Alert         string            `yaml:"alert"`
			Record        string            `yaml:"record"`
			Expr          string            `yaml:"expr"`
			For           string            `yaml:"for"`
			KeepFiringFor string            `yaml:"keep_firing_for"`
			Labels        map[string]string `yaml:"labels"`
			Annotations   map[string]string `yaml:"annotations"`
		} `yaml:"rules"`
	} `yaml:"groups"`
}

// promDuration is Prometheus' duration syntax (1h30m, 5m, 1d).
var promDuration = regexp.MustCompile(`^([0-9]+(ms|s|m|h|d|w|y))+$`)

// alertTemplateFuncs are Prometheus' template functions (stubs: only
// parsing is checked).
var alertTemplateFuncs = template.FuncMap{}

func init() {
	for _, f := range []string{"humanize", "humanize1024", "humanizeDuration", "humanizePercentage", "humanizeTimestamp",
		"title", "toUpper", "toLower", "first", "label", "value", "query", "reReplaceAll", "match", "sortByLabel",
		"strvalue", "args", "tableLink", "graphLink", "safeHtml", "pathPrefix", "externalURL", "stripPort", "stripDomain", "parseDuration", "toTime"} {
		alertTemplateFuncs[f] = func(...any) string { return "" }
	}
}

// loadAlertRules decodes the rule file strictly (an unknown key fails) and
// checks its structure as Prometheus would load it, returning every
// expression by alert name.
func loadAlertRules(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(alertRulesPath)
	if err != nil {
		t.Fatal(err)
	}
	var rf alertRules
	dec := yaml.NewDecoder(bytes.NewReader(b))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err != nil {
		t.Fatalf("%s does not decode as a Prometheus rule file: %v", alertRulesPath, err)
	}
	if len(rf.Groups) == 0 {
		t.Fatal("no rule groups")
	}
	exprs := map[string]string{}
	groups := map[string]bool{}
	for _, g := range rf.Groups {
		if g.Name == "" || groups[g.Name] {
			t.Errorf("group name %q empty or repeated", g.Name)
		}
		groups[g.Name] = true
		if g.Interval != "" && !promDuration.MatchString(g.Interval) {
			t.Errorf("group %s: interval %q", g.Name, g.Interval)
		}
		if len(g.Rules) == 0 {
			t.Errorf("group %s has no rules", g.Name)
		}
		for _, r := range g.Rules {
			name := r.Alert
			switch {
			case r.Alert == "" && r.Record == "", r.Alert != "" && r.Record != "":
				t.Errorf("group %s: a rule needs exactly one of alert and record: %+v", g.Name, r)
				continue
			case r.Record != "":
				name = r.Record
			case !regexp.MustCompile(`^MCPJupyter[A-Z][A-Za-z]+$`).MatchString(r.Alert):
				t.Errorf("alert %q: name them MCPJupyterCamelCase", r.Alert)
			}
			if _, dup := exprs[name]; dup {
				t.Errorf("rule %s defined twice", name)
			}
			if strings.TrimSpace(r.Expr) == "" {
				t.Errorf("rule %s has no expr", name)
			}
			exprs[name] = r.Expr
			for what, d := range map[string]string{"for": r.For, "keep_firing_for": r.KeepFiringFor} {
				if d != "" && !promDuration.MatchString(d) {
					t.Errorf("alert %s: %s %q is not a Prometheus duration", name, what, d)
				}
			}
			if r.Record != "" {
				continue
			}
			if s := r.Labels["severity"]; !slices.Contains([]string{"critical", "warning", "info"}, s) {
				t.Errorf("alert %s: severity %q, want critical, warning or info", name, s)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("alert %s has no %s: say what it means and what to do", name, a)
				}
			}
			for k, v := range r.Annotations {
				// NB: Prometheus defines these three before expanding.
				const defs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$value := .Value}}"
				if _, err := template.New(k).Funcs(alertTemplateFuncs).Parse(defs + v); err != nil {
					t.Errorf("alert %s: annotation %s does not parse as a template: %v", name, k, err)
				}
			}
		}
	}
	return exprs
}

// grafanaDashboard is the part of a dashboard the checks read.
type grafanaDashboard struct {
	Title         string `json:"title"`
	UID           string `json:"uid"`
	SchemaVersion int    `json:"schemaVersion"`
	Templating    struct {
		List []struct {
			Name       string `json:"name"`
			Type       string `json:"type"`
			Query      any    `json:"query"`
			Definition string `json:"definition"`
		} `json:"list"`
	} `json:"templating"`
	Panels []grafanaPanel `json:"panels"`
}

type grafanaPanel struct {
	ID          int    `json:"id"`
	Type        string `json:"type"`
	Title       string `json:"title"`
	Description string `json:"description"`
	Datasource  *struct {
		Type string `json:"type"`
		UID  string `json:"uid"`
	} `json:"datasource"`
	GridPos struct{ H, W, X, Y int } `json:"gridPos"`
	Targets []struct {
		Expr  string `json:"expr"`
		RefID string `json:"refId"`
	} `json:"targets"`
	Panels []grafanaPanel `json:"panels"` // a collapsed row's
}

// loadDashboard checks the dashboard's structure (a datasource variable to
// pick Prometheus at import, panels with targets on it, a layout inside 24
// columns) and returns every PromQL expression it runs, by where it is.
func loadDashboard(t *testing.T) map[string]string {
	t.Helper()
	b, err := os.ReadFile(dashboardPath)
	if err != nil {
		t.Fatal(err)
	}
	var d grafanaDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		t.Fatalf("%s: %v", dashboardPath, err)
	}
	if d.Title == "" || d.UID == "" || d.SchemaVersion < 30 {
		t.Errorf("title %q, uid %q, schemaVersion %d", d.Title, d.UID, d.SchemaVersion)
	}
	exprs := map[string]string{}
	hasDS := false
	for _, v := range d.Templating.List {
		switch v.Type {
		case "datasource":
			hasDS = hasDS || (v.Name == "datasource" && v.Query == "prometheus")
		case "query":
			// label_values(metric, label): the metric must exist too.
			m := regexp.MustCompile(`^label_values\((\w+),\s*\w+\)$`).FindStringSubmatch(v.Definition)
			if m == nil {
				t.Errorf("variable %s: %q is not label_values(metric, label)", v.Name, v.Definition)
				continue
			}
			exprs["variable "+v.Name] = m[1]
		}
	}
	if !hasDS {
		t.Error("no datasource variable of type prometheus: the import cannot ask which Prometheus")
	}
	ids := map[int]bool{}
	var walk func(ps []grafanaPanel)
	walk = func(ps []grafanaPanel) {
		for _, p := range ps {
			if ids[p.ID] || p.ID == 0 {
				t.Errorf("panel %q: id %d missing or repeated", p.Title, p.ID)
			}
			ids[p.ID] = true
			if g := p.GridPos; g.W < 1 || g.X < 0 || g.X+g.W > 24 || g.H < 1 {
				t.Errorf("panel %q: gridPos %+v outside 24 columns", p.Title, g)
			}
			if p.Type == "row" {
				if len(p.Targets) != 0 {
					t.Errorf("row %q has targets", p.Title)
				}
				walk(p.Panels)
				continue
			}
			if p.Title == "" || p.Description == "" || len(p.Targets) == 0 {
				t.Errorf("panel %d %q: needs a title, a description and targets", p.ID, p.Title)
			}
			if p.Datasource == nil || p.Datasource.Type != "prometheus" || p.Datasource.UID != "${datasource}" {
				t.Errorf("panel %q: datasource %+v, want prometheus ${datasource}", p.Title, p.Datasource)
			}
			refs := map[string]bool{}
			for _, tg := range p.Targets {
				if strings.TrimSpace(tg.Expr) == "" || tg.RefID == "" || refs[tg.RefID] {
					t.Errorf("panel %q: a target without expr or with a missing or repeated refId %q", p.Title, tg.RefID)
				}
				refs[tg.RefID] = true
				exprs[fmt.Sprintf("panel %q %s", p.Title, tg.RefID)] = tg.Expr
			}
		}
	}
	walk(d.Panels)
	if len(exprs) < 10 {
		t.Errorf("only %d expressions in the dashboard", len(exprs))
	}
	return exprs
}

// TestOperatorViewsUseExportedMetrics: every metric a dashboard panel, a
// dashboard variable or an alert rule uses is one a real server exports:
// a real core with a real kernel that ran real code, scraped over HTTP. A
// misspelt or removed metric fails, naming where it is used. The views also
// cover what the seed's runbook says to watch.
func TestOperatorViewsUseExportedMetrics(t *testing.T) {
	rules, dash := loadAlertRules(t), loadDashboard(t)
	c, connect := inProcess(t)
	cl := connect()
	mux := http.NewServeMux()
	c.routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	k := startKernelTool(t, cl)
	if sc, text := callTool(t, cl, "execute", map[string]any{"kernel": k, "code": "x = 6 * 7\nprint(x)"}); sc["status"] != "ok" {
		t.Fatalf("execute: %s", text)
	}
	caughtUp(t, c)
	exported := map[string]bool{}
	for series := range scrapeMetrics(t, srv.URL) {
		name, _, _ := strings.Cut(series, "{")
		exported[name] = true
	}
	if !exported[`mcp_jupyter_executions_finished_total`] || !exported["mcp_jupyter_ready"] {
		t.Fatalf("the scrape lacks the basics: %d names", len(exported))
	}
	used := map[string][]string{}
	for _, set := range []struct {
		what  string
		exprs map[string]string
	}{{alertRulesPath, rules}, {dashboardPath, dash}} {
		for where, expr := range set.exprs {
			names, err := promqlMetricNames(expr)
			if err != nil {
				t.Errorf("%s, %s: %v", set.what, where, err)
				continue
			}
			if len(names) == 0 {
				t.Errorf("%s, %s: %q selects no metric", set.what, where, expr)
			}
			for _, n := range names {
				used[n] = append(used[n], set.what+": "+where)
			}
		}
	}
	var missing []string
	for n, where := range used {
		if !exported[n] {
			sort.Strings(where)
			missing = append(missing, fmt.Sprintf("%s (used by %s)", n, strings.Join(where, "; ")))
		}
	}
	sort.Strings(missing)
	for _, m := range missing {
		t.Errorf("not exported by the server: %s", m)
	}
	// What the seed says to watch, and issue 18's additions, are watched.
	for _, want := range []string{"security_signature_failures_total", "missing_dependencies_count",
		"checkpoint_size_bytes_bucket", "checkpoint_save_duration_seconds_bucket", "checkpoint_load_duration_seconds_bucket",
		"mcp_jupyter_disk_free_bytes", "mcp_jupyter_disk_full_level", "persistence_db_size_bytes", "mcp_jupyter_kernels",
		"mcp_jupyter_kernel_deaths_total", "mcp_jupyter_queue_depth_max", "mcp_jupyter_kernel_restores_total",
		"mcp_jupyter_kernels_culled_total", "mcp_jupyter_auto_checkpoints_saved_total", "mcp_jupyter_ready",
		"zombie_process_cleanup_count"} {
		if len(used[want]) == 0 {
			t.Errorf("no panel or alert watches %s", want)
		}
	}
}

// TestDiskFullOnMetrics: a real server on a real 96 MiB data volume that
// keeps 32 MiB free. Filling the volume shows on /metrics as the alerts read
// it: the disk-full level rises, the server stops being ready, free space
// falls below the setting; freeing it brings all back.
func TestDiskFullOnMetrics(t *testing.T) {
	fs := testkit.SmallFS(t, diskTestFS)
	cfg := testConfig(t, filepath.Join(fs, "data"))
	cfg.MinFreeDisk = diskTestMinFree
	c, err := openCore(context.Background(), cfg, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.close(context.Background()) })
	t.Cleanup(func() { testkit.KillKernels(t, cfg.DataDir) })
	mux := http.NewServeMux()
	c.routes(mux)
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	wait := func(what string, ok func(m map[string]float64) bool) {
		t.Helper()
		testkit.WaitUntil(t, 30*time.Second, what, func() (bool, string) {
			m := scrapeMetrics(t, srv.URL)
			return ok(m), fmt.Sprintf("ready %v, level %v, free %v, min %v, size %v", m["mcp_jupyter_ready"], m["mcp_jupyter_disk_full_level"],
				m["mcp_jupyter_disk_free_bytes"], m["mcp_jupyter_disk_min_free_bytes"], m["mcp_jupyter_disk_size_bytes"])
		})
	}
	wait("ready, with room", func(m map[string]float64) bool {
		return m["mcp_jupyter_ready"] == 1 && m["mcp_jupyter_disk_full_level"] == 0 && m["mcp_jupyter_disk_min_free_bytes"] == diskTestMinFree &&
			m["mcp_jupyter_disk_size_bytes"] == diskTestFS && m["mcp_jupyter_disk_free_bytes"] > diskTestMinFree
	})
	filler := filepath.Join(fs, "filler")
	testkit.FillFS(t, filler, diskTestMinFree/2)
	wait("not ready, disk full", func(m map[string]float64) bool {
		return m["mcp_jupyter_ready"] == 0 && m["mcp_jupyter_disk_full_level"] >= 1 && m["mcp_jupyter_disk_free_bytes"] < diskTestMinFree
	})
	if rd := c.probes.ready(time.Now()); rd.Checks["disk"] == "ok" {
		t.Errorf("/readyz's disk check says ok while the metric says not ready: %+v", rd)
	}
	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	wait("ready again once space is back", func(m map[string]float64) bool {
		return m["mcp_jupyter_ready"] == 1 && m["mcp_jupyter_disk_full_level"] == 0
	})
}

// TestAlertRulesAndDashboardRefuseMistakes: the structural checks fail on
// the mistakes they are there for (run on broken copies).
func TestAlertRulesAndDashboardRefuseMistakes(t *testing.T) {
	var rf alertRules
	dec := yaml.NewDecoder(strings.NewReader("groups:\n  - name: g\n    rules:\n      - alert: MCPJupyterX\n        exprr: up\n"))
	dec.KnownFields(true)
	if err := dec.Decode(&rf); err == nil || !strings.Contains(err.Error(), "exprr") {
		t.Errorf("a misspelt rule key decoded: %v", err)
	}
	const defs = "{{$labels := .Labels}}{{$externalLabels := .ExternalLabels}}{{$value := .Value}}"
	if _, err := template.New("a").Funcs(alertTemplateFuncs).Parse(defs + "{{ $value | humanise }}"); err == nil {
		t.Error("an annotation calling an unknown function parsed")
	}
	if promDuration.MatchString("5 min") || !promDuration.MatchString("1h30m") {
		t.Error("the duration check is wrong")
	}
}
