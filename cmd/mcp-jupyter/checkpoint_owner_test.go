package main

import (
	"strings"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// TestCheckpointNamesPerPrincipalThroughMCP: alice and bob each save "x"
// through the MCP tools; each lists and loads only its own; bob naming
// "alice/x" is told it does not exist, in the words of an unknown name;
// the admin lists both, alice's as "alice/x", and loads it by that name.
func TestCheckpointNamesPerPrincipalThroughMCP(t *testing.T) {
	_, connect := inProcess(t)
	cl := connect()
	alice, bob, admin := agent("alice", 0), agent("bob", 0), auth.Admin()
	kernels := map[string]string{}
	for _, p := range []auth.Principal{alice, bob} {
		_, text := callAs(cl, p, "start_kernel", map[string]any{"kernelspec": "python3"})
		k := kernelIDPattern.FindString(text)
		kernels[p.Name] = k
		if sc, text := callAs(cl, p, "execute", map[string]any{"kernel": k, "code": "who = '" + p.Name + "'"}); sc["status"] != "ok" {
			t.Fatalf("%s: %v %s", p.Name, sc, text)
		}
		if _, text := callAs(cl, p, "save_environment", map[string]any{"kernel": k, "name": "x"}); strings.HasPrefix(text, "ERROR") {
			t.Fatalf("%s saves x: %s", p.Name, text)
		}
	}
	for _, p := range []auth.Principal{alice, bob} {
		sc, text := callAs(cl, p, "list_checkpoints", map[string]any{})
		list, _ := sc["checkpoints"].([]any)
		if len(list) != 1 {
			t.Fatalf("%s lists %d checkpoints: %s", p.Name, len(list), text)
		}
		c := list[0].(map[string]any)
		if c["name"] != "x" || c["owner"] != p.Name {
			t.Fatalf("%s's list: %v", p.Name, c)
		}
		if _, text := callAs(cl, p, "load_environment", map[string]any{"kernel": kernels[p.Name], "name": "x"}); strings.HasPrefix(text, "ERROR") {
			t.Fatalf("%s loads x: %s", p.Name, text)
		}
		if _, text := callAs(cl, p, "execute", map[string]any{"kernel": kernels[p.Name], "code": "print(who)"}); !strings.Contains(text, p.Name) {
			t.Fatalf("%s's x restored someone else's variables: %s", p.Name, text)
		}
	}
	_, foreign := callAs(cl, bob, "load_environment", map[string]any{"kernel": kernels["bob"], "name": "alice/x"})
	_, unknown := callAs(cl, bob, "load_environment", map[string]any{"kernel": kernels["bob"], "name": "alice/nothing"})
	if !strings.Contains(foreign, `no checkpoint "alice/x"`) || strings.ReplaceAll(unknown, "alice/nothing", "alice/x") != foreign {
		t.Fatalf("bob naming alice's checkpoint: %q; an unknown one: %q", foreign, unknown)
	}
	if _, text := callAs(cl, bob, "delete_checkpoint", map[string]any{"name": "alice/x"}); !strings.Contains(text, `no checkpoint "alice/x"`) {
		t.Fatalf("bob deleting alice's checkpoint: %s", text)
	}
	sc, text := callAs(cl, admin, "list_checkpoints", map[string]any{})
	list, _ := sc["checkpoints"].([]any)
	var names []string
	for _, c := range list {
		names = append(names, c.(map[string]any)["name"].(string))
	}
	if strings.Join(names, " ") != "alice/x bob/x" && strings.Join(names, " ") != "bob/x alice/x" {
		t.Fatalf("the admin lists %v: %s", names, text)
	}
	if _, text := callAs(cl, admin, "load_environment", map[string]any{"kernel": kernels["bob"], "name": "alice/x"}); strings.HasPrefix(text, "ERROR") {
		t.Fatalf("the admin loads alice/x: %s", text)
	}
	// Saving is into one's own names only, the admin's too.
	if _, text := callAs(cl, admin, "save_environment", map[string]any{"kernel": kernels["bob"], "name": "alice/y"}); !strings.Contains(text, "saver's own names") {
		t.Fatalf("the admin saving into alice's names: %s", text)
	}
}
