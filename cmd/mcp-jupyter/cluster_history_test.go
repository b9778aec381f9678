package main

import (
	"context"
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/natsbus"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// foreignOf turns drafts into records node wrote, as an importer hands
// them to AppendForeign.
func foreignOf(t *testing.T, node string, ds []events.Draft) []events.Event {
	t.Helper()
	var out []events.Event
	for _, d := range ds {
		raw, err := json.Marshal(d.Payload)
		if err != nil {
			t.Fatal(err)
		}
		typ := d.Payload.EventType()
		v, _ := events.CurrentVersion(typ)
		out = append(out, events.Event{Time: time.Now().Add(-time.Hour), Stream: d.Stream, Kernel: d.Kernel, Node: node, Principal: d.Principal,
			Type: typ, Version: v, Raw: raw})
	}
	return out
}

// sharedDrafts are n realistic drafts of the kinds a cluster shares.
func sharedDrafts(n int) []events.Draft {
	var out []events.Draft
	for _, d := range testkit.RealisticDrafts(n) {
		if slices.Contains(natsbus.ImportedKinds, events.StreamKind(d.Stream)) {
			out = append(out, d)
		}
	}
	return out
}

// TestEventsVerifyWithForeignRecords: a node's log holding records imported
// from two other nodes between its own verifies, and says how many came
// from whom; an imported record of a kind not shared, or of a node whose
// records the log also holds as its own, fails with what is wrong.
func TestEventsVerifyWithForeignRecords(t *testing.T) {
	ctx := context.Background()
	build := func(t *testing.T, fill func(l *eventlog.Log)) string {
		dataDir := testkit.TempDataDir(t)
		l := testkit.OpenLogWith(t, filepath.Join(dataDir, "events"), eventlog.Options{Node: "b"})
		fill(l)
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
		return dataDir
	}
	dir := build(t, func(l *eventlog.Log) {
		own := testkit.RealisticDrafts(300)
		fa, fc := foreignOf(t, "a", sharedDrafts(200)), foreignOf(t, "c", sharedDrafts(100))
		pos := uint64(0)
		for i := 0; i < 10; i++ {
			testkit.AppendAll(t, l, own[i*30:(i+1)*30])
			pos += 3
			a, c := fa[i*len(fa)/10:(i+1)*len(fa)/10], fc[i*len(fc)/10:(i+1)*len(fc)/10]
			if err := l.AppendForeign(ctx, pos, append(slices.Clone(a), c...)); err != nil {
				t.Fatal(err)
			}
		}
		if err := l.AppendForeign(ctx, pos+5, nil); err != nil { // passed over own records at the end
			t.Fatal(err)
		}
	})
	out := mustEvents(t, "verify", "--data-dir", dir)
	if !strings.HasPrefix(out, "ok: ") || !strings.Contains(out, "imported from other nodes of the cluster (a: ") || !strings.Contains(out, ", c: ") {
		t.Fatalf("verify of a log with imported records:\n%s", out)
	}

	for _, c := range []struct {
		name string
		fill func(l *eventlog.Log)
		want string
	}{
		{"a kind not shared", func(l *eventlog.Log) {
			bad := foreignOf(t, "a", []events.Draft{{Stream: events.AssetStream("sha"), Payload: events.KernelLost{KernelID: "k", Reason: "x"}}})
			if err := l.AppendForeign(ctx, 1, bad); err != nil {
				t.Fatal(err)
			}
		}, "only [kernel execution server] are shared"},
		{"own and imported records of one node", func(l *eventlog.Log) {
			if err := l.AppendForeign(ctx, 1, foreignOf(t, "b", sharedDrafts(5))); err != nil {
				t.Fatal(err)
			}
		}, "two nodes share the name b"},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := build(t, func(l *eventlog.Log) {
				testkit.AppendAll(t, l, testkit.RealisticDrafts(10))
				c.fill(l)
			})
			_, err := events_(t, "verify", "--data-dir", dir)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("verify: %v, want an error saying %q", err, c.want)
			}
		})
	}
}
