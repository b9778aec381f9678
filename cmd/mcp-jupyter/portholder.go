package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mcp-jupyter/mcp-jupyter/infra/jupyter"
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
// /proc/net/tcp{,6} and /proc/*/fd (the parsing lives in infra/jupyter,
// which proves a kernel owns its ports the same way). It only reads: the
// process is never signalled.
func portHolder(port int) (holder, bool) {
	for _, ino := range jupyter.ListeningInodes(port) {
		pid, ok := jupyter.SocketOwner(ino)
		if !ok {
			continue
		}
		dir := filepath.Join("/proc", strconv.Itoa(pid))
		comm, _ := os.ReadFile(filepath.Join(dir, "comm"))
		cmd, _ := os.ReadFile(filepath.Join(dir, "cmdline"))
		return holder{Pid: pid, Comm: strings.TrimSpace(string(comm)),
			Cmdline: strings.TrimSpace(strings.ReplaceAll(string(cmd), "\x00", " "))}, true
	}
	return holder{}, false
}
