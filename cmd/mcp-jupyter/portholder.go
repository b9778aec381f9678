package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// holder is a process holding a listening socket.
type holder struct {
	Pid     int
	Comm    string
	Cmdline string
}

func (h holder) String() string {
	s := fmt.Sprintf("pid %d (%s)", h.Pid, h.Comm)
	if h.Cmdline != "" {
		s += ": " + h.Cmdline
	}
	return s
}

// portHolder names the process listening on TCP port (IPv4 or IPv6) from
// /proc/net/tcp{,6} and /proc/*/fd. It only reads: the process is never
// signalled.
func portHolder(port int) (holder, bool) {
	inodes := map[uint64]bool{}
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		for _, ino := range listeningInodes(b, port) {
			inodes[ino] = true
		}
	}
	if len(inodes) == 0 {
		return holder{}, false
	}
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		fds, err := os.ReadDir(filepath.Join("/proc", p.Name(), "fd"))
		if err != nil {
			continue // another user's process, or gone
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join("/proc", p.Name(), "fd", fd.Name()))
			if err != nil {
				continue
			}
			ino, ok := socketInode(link)
			if ok && inodes[ino] {
				comm, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "comm"))
				cmd, _ := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
				return holder{Pid: pid, Comm: strings.TrimSpace(string(comm)),
					Cmdline: strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))}, true
			}
		}
	}
	return holder{}, false
}

// socketInode parses a /proc/<pid>/fd link of the form "socket:[12345]".
func socketInode(link string) (uint64, bool) {
	s, ok := strings.CutPrefix(link, "socket:[")
	if !ok {
		return 0, false
	}
	s, ok = strings.CutSuffix(s, "]")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseUint(s, 10, 64)
	return n, err == nil
}

// tcpListen is the st column of a listening socket in /proc/net/tcp.
const tcpListen = "0A"

// listeningInodes parses /proc/net/tcp or /proc/net/tcp6 and returns the
// inodes of the sockets listening on port. Lines that do not parse are
// skipped: the table is the kernel's, and a short read must not fail the
// check.
func listeningInodes(table []byte, port int) []uint64 {
	var out []uint64
	for i, line := range strings.Split(string(table), "\n") {
		if i == 0 {
			continue // header
		}
		fields := strings.Fields(line)
		if len(fields) < 10 || fields[3] != tcpListen {
			continue
		}
		colon := strings.LastIndexByte(fields[1], ':')
		if colon < 0 {
			continue
		}
		p, err := strconv.ParseUint(fields[1][colon+1:], 16, 16)
		if err != nil || int(p) != port {
			continue
		}
		ino, err := strconv.ParseUint(fields[9], 10, 64)
		if err != nil || ino == 0 {
			continue
		}
		out = append(out, ino)
	}
	return out
}
