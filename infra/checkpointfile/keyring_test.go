package checkpointfile

import (
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
