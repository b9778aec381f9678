package jupyter

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// PoolMarker records a kernel the Pool started that no log records yet:
// <runtime>/pool/<id>.json, written before the process starts and again
// with its pid as soon as it runs, removed when the kernel is discarded or
// its start is recorded (Pool.Recorded). A marker found at start names a
// kernel a killed server left behind (ReapPool).
//
// NB: stored on disk between server runs; the field names must not change.
type PoolMarker struct {
	KernelID  string `json:"kernel_id"`
	Spec      string `json:"spec"`
	Pid       int    `json:"pid,omitempty"`
	StartTime uint64 `json:"start_time,omitempty"`
}

// poolDir holds the markers. NB: beside kernels/, not in any KernelDir: the
// sandbox hides it from every kernel.
func poolDir(runtimeDir string) string { return filepath.Join(runtimeDir, "pool") }

func poolMarkerPath(runtimeDir, id string) string {
	return filepath.Join(poolDir(runtimeDir), id+".json")
}

// kernelLogPath is where StartKernel puts kernel id's log by default.
func kernelLogPath(runtimeDir, id string) string {
	return filepath.Join(runtimeDir, "kernel-"+id+".log")
}

// writePoolMarker writes m atomically (temporary file, rename). No fsync:
// the marker must survive the server's death, not the machine's (a
// machine that goes down takes the kernels with it).
func writePoolMarker(runtimeDir string, m PoolMarker) error {
	if !validMarkerID(m.KernelID) {
		return fmt.Errorf("write pool marker: invalid kernel id %q", m.KernelID)
	}
	dir := poolDir(runtimeDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("write pool marker: %w", err)
	}
	data, err := json.Marshal(m)
	if err != nil {
		return fmt.Errorf("write pool marker: %w", err)
	}
	tmp, err := os.CreateTemp(dir, "."+m.KernelID+"-*.tmp")
	if err != nil {
		return fmt.Errorf("write pool marker: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after the rename
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return fmt.Errorf("write pool marker: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("write pool marker: %w", err)
	}
	if err := os.Rename(tmp.Name(), poolMarkerPath(runtimeDir, m.KernelID)); err != nil {
		return fmt.Errorf("write pool marker: %w", err)
	}
	return nil
}

func removePoolMarker(runtimeDir, id string) {
	if validMarkerID(id) {
		_ = os.Remove(poolMarkerPath(runtimeDir, id))
	}
}

func validMarkerID(id string) bool {
	return id != "" && id != "." && id != ".." && filepath.Base(id) == id
}

// ReadPoolMarkers lists the markers in runtimeDir's pool directory (none
// if it does not exist). Unreadable ones are returned as errors.
func ReadPoolMarkers(runtimeDir string) ([]PoolMarker, error) {
	entries, err := os.ReadDir(poolDir(runtimeDir))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("list pool markers: %w", err)
	}
	var out []PoolMarker
	var errs []error
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok || e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		data, err := os.ReadFile(filepath.Join(poolDir(runtimeDir), e.Name()))
		if err != nil {
			errs = append(errs, fmt.Errorf("read pool marker: %w", err))
			continue
		}
		var m PoolMarker
		if err := json.Unmarshal(data, &m); err != nil || m.KernelID != id {
			// NB: the name is the truth: a damaged marker still names its kernel.
			m = PoolMarker{KernelID: id}
		}
		out = append(out, m)
	}
	return out, errors.Join(errs...)
}

// ReapPool settles the markers a previous server left: a marked kernel in
// keep (its start was recorded: the server re-attaches it) only loses its
// marker; any other is killed (SIGKILL to its group, only if its pid still
// has the recorded start time; a marker without pid — the server died
// between writing it and the process starting — or whose process is gone —
// a retried start's second process — is matched by the kernel's connection
// file on its command line) and its directory and log removed.
// Call it at start, after recovery, before the pool or any kernel starts.
// It returns how many processes it killed.
func ReapPool(runtimeDir string, keep []string, logger *slog.Logger) (int, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	markers, err := ReadPoolMarkers(runtimeDir)
	live := map[string]bool{}
	for _, id := range keep {
		live[id] = true
	}
	killed := 0
	var errs []error
	if err != nil {
		errs = append(errs, err)
	}
	for _, m := range markers {
		if live[m.KernelID] {
			removePoolMarker(runtimeDir, m.KernelID)
			continue
		}
		conn := ConnectionFilePath(runtimeDir, m.KernelID)
		pids := []procID{{m.Pid, m.StartTime}}
		if m.Pid == 0 {
			pids = processesWithArg(conn)
		}
		failed := false
		for i := 0; i < len(pids); i++ {
			pr := pids[i]
			err := SignalGroup(pr.pid, pr.start, syscall.SIGKILL)
			switch {
			case err == nil:
				killed++
				logger.Info("killed a pre-started kernel a previous server left in its pool", "component", "kernel",
					"kernel_id", m.KernelID, "pid", pr.pid)
			case errors.Is(err, ErrProcessGone):
				if m.Pid != 0 && i == 0 {
					// NB: the recorded process is gone, but a retried
					// start may have run a second one under the same id
					// before the marker was rewritten: it has the
					// kernel's connection file on its command line.
					pids = append(pids, processesWithArg(conn)...)
				}
			default:
				failed = true
				errs = append(errs, fmt.Errorf("kill pre-started kernel %s: %w", m.KernelID, err))
			}
		}
		if failed {
			continue // NB: keep the marker: the next start tries again
		}
		_ = os.RemoveAll(KernelDir(runtimeDir, m.KernelID))
		_ = os.Remove(kernelLogPath(runtimeDir, m.KernelID))
		removePoolMarker(runtimeDir, m.KernelID)
	}
	return killed, errors.Join(errs...)
}

type procID struct {
	pid   int
	start uint64
}

// processesWithArg lists the processes with arg on their command line.
func processesWithArg(arg string) []procID {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []procID
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid <= 1 || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		for _, a := range strings.Split(string(cmdline), "\x00") {
			if a == arg {
				if st, err := ProcessStartTime(pid); err == nil {
					out = append(out, procID{pid, st})
				}
				break
			}
		}
	}
	return out
}
