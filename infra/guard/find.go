package guard

import (
	"bytes"
	"os"
	"strconv"
)

// Running reports whether a guard of the kernel pid (started at
// startTime) watching lock runs: a server re-attaching a kernel starts one
// only if none does (an older server may have started it without one, or
// its guard was killed). It reads /proc/*/cmdline and /proc/*/exe. NB: a
// process counts only if it runs self's binary (the same file) with this
// subcommand, pid, start time and lock as its arguments: a kernel can
// start any process with a guard's command line, to keep a real guard
// from starting at the re-attach. (A guard of a binary replaced on disk
// since does not count either: the kernel then gets a second guard, which
// is harmless.)
func Running(self Self, pid int, startTime uint64, lock string) bool {
	path := self.Path
	if path == "" {
		exe, err := os.Executable()
		if err != nil {
			return false
		}
		path = exe
	}
	bin, err := os.Stat(path)
	if err != nil {
		return false
	}
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		args := bytes.Split(bytes.TrimSuffix(b, []byte{0}), []byte{0})
		if len(args) < 2 || string(args[1]) != Subcommand {
			continue
		}
		strs := make([]string, 0, len(args)-2)
		for _, a := range args[2:] {
			strs = append(strs, string(a))
		}
		o, err := parseArgs(strs)
		if err != nil || o.Pid != pid || o.StartTime != startTime || o.Lock != lock {
			continue
		}
		if exe, err := os.Stat("/proc/" + e.Name() + "/exe"); err == nil && os.SameFile(exe, bin) {
			return true
		}
	}
	return false
}
