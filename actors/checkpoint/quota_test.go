package checkpoint

import (
	"encoding/binary"
	"fmt"
	"os"
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/infra/checkpointfile"
)

// sealedBytes must bound the size of the file a real save seals (the quota
// is reserved from it), and tightly: the bound is the file's size.
func TestSealedBytes(t *testing.T) {
	for _, encrypt := range []bool{false, true} {
		keys, err := checkpointfile.OpenKeyring(t.TempDir(), "")
		if err != nil {
			t.Fatal(err)
		}
		files, err := checkpointfile.Open(t.TempDir(), keys, encrypt)
		if err != nil {
			t.Fatal(err)
		}
		for _, payload := range []int{512 << 10, 2 << 20, 5<<20 + 1} {
			var bound int64
			size, err := files.Save(fmt.Sprintf("p%d", payload), 0, func(stage *os.File) error {
				// The kernel's framed stream: data frames of at most 1 MiB, then the end mark.
				for left := payload; left > 0; {
					n := min(left, 1<<20)
					if _, err := stage.Write(append(binary.BigEndian.AppendUint32([]byte{'D'}, uint32(n)), make([]byte, n)...)); err != nil {
						return err
					}
					left -= n
				}
				_, err := stage.Write([]byte{'E'})
				return err
			}, func(keyID string, _ bool, payloadBytes int64, _ string) ([]byte, error) {
				mb := []byte(`{"name":"x"}`)
				bound = sealedBytes(keyID, payloadBytes, len(mb))
				return mb, nil
			})
			if err != nil {
				t.Fatalf("save %d bytes (encrypt %v): %v", payload, encrypt, err)
			}
			if bound != size {
				t.Errorf("payload %d bytes (encrypt %v): sealedBytes = %d, the sealed file has %d", payload, encrypt, bound, size)
			}
		}
	}
}
