package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
	nbfile "github.com/mcp-jupyter/mcp-jupyter/infra/notebook"
)

// TestReusedExecutionIDHidesForeignKernel: bob, choosing an execution id
// alice already used — one long finished (gone from the execution read
// model) or one just queued — is refused without learning her kernel's id.
func TestReusedExecutionIDHidesForeignKernel(t *testing.T) {
	ps := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.DefaultScopes, "bob": auth.DefaultScopes})
	alice, bob := ps.clients["alice"], ps.clients["bob"]
	ka, kb := startKernelTool(t, alice), startKernelTool(t, bob)

	// An old execution: finished, then pushed out of the read model.
	ps.c.execs.SetMaxFinished(1)
	must(t, alice, "execute", map[string]any{"kernel": ka, "code": "1", "execution_id": "alice-old"})
	must(t, alice, "execute", map[string]any{"kernel": ka, "code": "2"})
	must(t, alice, "execute", map[string]any{"kernel": ka, "code": "3"})
	if _, ok := ps.c.execs.Get("alice-old"); ok {
		t.Fatal("alice-old is still held by the execution model: the test does not test the log path")
	}
	// A new one: still running when bob asks.
	if sc := must(t, alice, "execute", map[string]any{"kernel": ka, "code": "import time; time.sleep(20)", "execution_id": "alice-new", "timeout_s": 0.1}); sc["status"] == "ok" {
		t.Fatalf("alice-new finished at once: %v", sc)
	}
	for _, id := range []string{"alice-old", "alice-new"} {
		msg := errorText(t, bob, "execute", map[string]any{"kernel": kb, "code": "1", "execution_id": id})
		if strings.Contains(msg, ka) || !strings.Contains(msg, "already used") {
			t.Errorf("bob reusing %s: %q: it must refuse without naming alice's kernel %s", id, msg, ka)
		}
		// Alice, who may read her kernel, is told which.
		if msg := errorText(t, alice, "execute", map[string]any{"kernel": kb, "code": "1", "execution_id": id}); msg == "" {
			t.Errorf("alice reusing %s on bob's kernel was not refused", id)
		}
	}
	if msg := errorText(t, ps.clients["admin"], "execute", map[string]any{"kernel": kb, "code": "1", "execution_id": "alice-old"}); !strings.Contains(msg, ka) {
		t.Errorf("the admin reusing alice-old: %q, want the kernel %s named", msg, ka)
	}
	must(t, alice, "interrupt_kernel", map[string]any{"kernel": ka})
}

// TestShareWithdrawnAfterShutdown: a share of a kernel that is no longer
// running can still be withdrawn, and then bob no longer sees the kernel
// or its executions.
func TestShareWithdrawnAfterShutdown(t *testing.T) {
	ps := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.DefaultScopes, "bob": auth.DefaultScopes})
	alice, bob := ps.clients["alice"], ps.clients["bob"]
	k := startKernelTool(t, alice)
	sc := must(t, alice, "execute", map[string]any{"kernel": k, "code": "print('alice-out')"})
	x := sc["execution_id"].(string)
	must(t, alice, "share_kernel", map[string]any{"kernel": k, "principal": "bob", "access": "read"})
	must(t, alice, "shutdown_kernel", map[string]any{"kernel": k})
	if _, text := callTool(t, bob, "get_execution", map[string]any{"execution_id": x}); !strings.Contains(text, "alice-out") {
		t.Fatalf("shared for read, bob does not read the execution of the shut-down kernel: %s", text)
	}

	must(t, alice, "share_kernel", map[string]any{"kernel": k, "principal": "bob", "access": "none"})
	if ids := kernelIDs(t, bob); slices.Contains(ids, k) {
		t.Fatalf("after withdrawing, bob's list_kernels shows %s: %v", k, ids)
	}
	if msg := errorText(t, bob, "get_execution", map[string]any{"execution_id": x}); !strings.Contains(msg, "unknown execution") {
		t.Fatalf("after withdrawing, bob's get_execution of %s: %q, want unknown execution", x, msg)
	}
	// A new grant on a dead kernel is still refused.
	if msg := errorText(t, alice, "share_kernel", map[string]any{"kernel": k, "principal": "bob", "access": "read"}); msg == "" {
		t.Fatal("a share of a shut-down kernel was accepted")
	}
}

// TestNotebookRootRefusesANamelessPrincipal: a principal with an empty
// name (an edge that authenticated nobody) gets no notebook root — not a
// hashed directory of its own, not the whole root.
func TestNotebookRootRefusesANamelessPrincipal(t *testing.T) {
	whole, err := nbfile.NewRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := auth.WithPrincipal(context.Background(), auth.Principal{Scopes: auth.DefaultScopes})
	if _, err := rootFor(ctx, whole); !errors.Is(err, auth.ErrNoPrincipal) {
		t.Fatalf("rootFor a nameless principal: %v, want auth.ErrNoPrincipal", err)
	}
	if ents, _ := os.ReadDir(filepath.Join(whole.Dir(), usersDir)); len(ents) != 0 {
		t.Fatalf("a nameless principal got a directory: %v", ents)
	}
}

// TestUserDirNamesNeverCollide: OAuth subjects differing only in case get
// distinct directories whose names differ in more than case; a token
// principal named like a hashed directory cannot take an OAuth user's; a
// plain token name keeps its directory.
func TestUserDirNamesNeverCollide(t *testing.T) {
	upper, lower := userDirName("oidc:Bob"), userDirName("oidc:bob")
	if strings.EqualFold(upper, lower) {
		t.Fatalf("oidc:Bob → %q and oidc:bob → %q: the same directory on a case-insensitive filesystem", upper, lower)
	}
	if got := userDirName(lower); got == lower {
		t.Fatalf("a token principal named %q gets the directory of oidc:bob", lower)
	}
	if got := userDirName("alice"); got != "alice" {
		t.Fatalf("alice's directory: %q", got)
	}
	if got := userDirName("oidc:alice"); !strings.HasPrefix(got, "h-") {
		t.Fatalf("oidc:alice's directory %q is not hashed", got)
	}
}

// TestListKernelsShowsOwnerAndShares: a kernel shared with bob shows bob
// whose it is; its shares are shown to the owner and the admin, not to bob.
func TestListKernelsShowsOwnerAndShares(t *testing.T) {
	ps := openPrincipalsServer(t, map[string]auth.Scope{"alice": auth.DefaultScopes, "bob": auth.DefaultScopes})
	alice := ps.clients["alice"]
	sc := must(t, alice, "start_kernel", map[string]any{"kernelspec": "python3"})
	k := sc["kernel_id"].(string)
	if sc["owner"] != "alice" {
		t.Fatalf("start_kernel by alice: owner %v", sc["owner"])
	}
	must(t, alice, "share_kernel", map[string]any{"kernel": k, "principal": "bob", "access": "read"})
	listed := func(cl string) map[string]any {
		t.Helper()
		list, _ := must(t, ps.clients[cl], "list_kernels", map[string]any{})["kernels"].([]any)
		for _, v := range list {
			if m := v.(map[string]any); m["kernel_id"] == k {
				return m
			}
		}
		t.Fatalf("%s's list_kernels lacks %s", cl, k)
		return nil
	}
	if m := listed("bob"); m["owner"] != "alice" || m["shares"] != nil {
		t.Errorf("bob's view of alice's shared kernel: owner %v shares %v, want alice and no shares", m["owner"], m["shares"])
	}
	for _, who := range []string{"alice", "admin"} {
		if m := listed(who); m["owner"] != "alice" || fmt.Sprint(m["shares"]) != "map[bob:read]" {
			t.Errorf("%s's view: owner %v shares %v, want alice and bob:read", who, m["owner"], m["shares"])
		}
	}
}
