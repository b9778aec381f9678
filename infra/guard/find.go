package guard

import (
	"bytes"
	"os"
	"strconv"
)

// Running reports whether a guard of the kernel pid (started at
// startTime) runs: a server re-attaching a kernel starts one only if none
// does (an older server may have started it without one, or its guard was
// killed). It reads /proc/*/cmdline.
func Running(pid int, startTime uint64) bool {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	want := [][]byte{[]byte(Subcommand), []byte("--pid\x00" + strconv.Itoa(pid) + "\x00"),
		[]byte("--start-time\x00" + strconv.FormatUint(startTime, 10) + "\x00")}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		ok := true
		for _, w := range want {
			if !bytes.Contains(b, w) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}
