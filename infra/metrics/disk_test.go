package metrics_test

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/metrics"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// TestDiskFigures: on a real 64 MiB file system holding a real log that
// keeps 16 MiB free, the disk figures follow the volume: its size, the free
// space as statfs sees it, the setting, and the disk-full level rising to
// "new work refused" when a file fills the volume and back to 0 once it is
// removed (the alerts MCPJupyterDiskFull and MCPJupyterDiskFillingUp read
// these).
func TestDiskFigures(t *testing.T) {
	fs := testkit.SmallFS(t, 64<<20)
	const minFree = 16 << 20
	l := testkit.OpenLogWith(t, filepath.Join(fs, "events"), eventlog.Options{Node: "n", MinFree: minFree,
		MinFreeSetting: "--min-free-disk", SpaceInterval: 20 * time.Millisecond})
	reg := prometheus.NewRegistry()
	if _, err := metrics.New(reg, l); err != nil {
		t.Fatal(err)
	}
	if got := value(t, reg, "mcp_jupyter_disk_size_bytes"); got != 64<<20 {
		t.Errorf("disk size %v, want the tmpfs's %d", got, 64<<20)
	}
	if got := value(t, reg, "mcp_jupyter_disk_min_free_bytes"); got != minFree {
		t.Errorf("min free %v, want %d", got, minFree)
	}
	if got := value(t, reg, "mcp_jupyter_disk_full_level"); got != 0 {
		t.Errorf("level %v on an empty volume", got)
	}
	free := func() (bool, string) {
		got, want := value(t, reg, "mcp_jupyter_disk_free_bytes"), float64(testkit.FreeBytes(t, fs))
		return got == want, fmt.Sprintf("scraped %v, statfs says %v", got, want)
	}
	testkit.WaitUntil(t, 10*time.Second, "free bytes = statfs", free)

	filler := filepath.Join(fs, "filler")
	testkit.FillFS(t, filler, minFree-4<<20) // 12 MiB left: below the setting, above 3/4 of it
	testkit.WaitUntil(t, 10*time.Second, "level 1 (new work refused)", func() (bool, string) {
		got := value(t, reg, "mcp_jupyter_disk_full_level")
		return got == eventlog.SpaceLow, fmt.Sprint("it is ", got)
	})
	testkit.WaitUntil(t, 10*time.Second, "free bytes = statfs, below the setting", func() (bool, string) {
		ok, why := free()
		return ok && value(t, reg, "mcp_jupyter_disk_free_bytes") < minFree, why
	})

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	testkit.WaitUntil(t, 10*time.Second, "level 0 once space is back", func() (bool, string) {
		got := value(t, reg, "mcp_jupyter_disk_full_level")
		return got == eventlog.SpaceOK, fmt.Sprint("it is ", got)
	})
}
