package checkpointfile

import (
	"os"
	"strings"
	"testing"
)

// TestKeyringRefusesPlaceholderSecret: MCP_CHECKPOINT_SECRET set to the
// documentation's example value (which anyone can read, so anyone could
// sign checkpoints the server would load) is refused with the way out.
func TestKeyringRefusesPlaceholderSecret(t *testing.T) {
	for _, secret := range []string{"replace-with-openssl-rand-hex-32", "REPLACE-WITH-a-random-value-please"} {
		_, err := OpenKeyring(t.TempDir(), secret)
		if err == nil || !strings.Contains(err.Error(), "openssl rand -hex 32") || !strings.Contains(err.Error(), SecretEnv) {
			t.Errorf("secret %q: want a refusal naming %s and openssl rand -hex 32, got %v", secret, SecretEnv, err)
		}
	}
	if _, err := OpenKeyring(t.TempDir(), "9f2c4e1a7b3d5f6e8a0c2b4d6f8e1a3c5b7d9f0e2a4c6b8d"); err != nil {
		t.Fatalf("a random secret was refused: %v", err)
	}
}

// TestKeyringFromSecretIsTheSameOnEveryNode: the nodes of a cluster open
// their keyrings in their own data dirs — one that ran alone before and
// generated a key of its own, one new — from the same MCP_CHECKPOINT_SECRET:
// both sign with the same key (id and secret), derived from the secret
// alone and never written to disk, so a checkpoint signed on one verifies
// on the other.
func TestKeyringFromSecretIsTheSameOnEveryNode(t *testing.T) {
	const secret = "c1a5e2b7d94f08a36b5e1c7d2f9a4b8e"
	old, fresh := t.TempDir(), t.TempDir()
	if _, err := OpenKeyring(old, ""); err != nil { // a key generated per data dir
		t.Fatal(err)
	}
	a, err := OpenKeyring(old, secret)
	if err != nil {
		t.Fatal(err)
	}
	b, err := OpenKeyring(fresh, secret)
	if err != nil {
		t.Fatal(err)
	}
	ka, kb := a.Current(), b.Current()
	if ka.ID != kb.ID || string(ka.Secret) != string(kb.Secret) || !strings.HasPrefix(ka.ID, "env-") {
		t.Fatalf("signing keys differ: %s vs %s (want the same env- key)", ka.ID, kb.ID)
	}
	if ents, _ := os.ReadDir(fresh); len(ents) != 0 {
		t.Fatalf("the secret's key was written to disk: %d entries in the fresh key dir", len(ents))
	}
	body := []byte("header and tags")
	if string(Sign(ka, body)) != string(Sign(kb, body)) {
		t.Fatal("the two nodes' keys sign differently")
	}
}
