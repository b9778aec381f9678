package jupyter

import (
	"bytes"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// ErrPortNotOwned means a port in a kernel's connection file is listened on
// by another process, not by the kernel: the server never dials it.
var ErrPortNotOwned = errors.New("jupyter: port not owned by the kernel")

// PortOwnerError names the port a kernel does not own and, when it could be
// found, the process that does.
type PortOwnerError struct {
	Channel string // shell, iopub, stdin, control or hb
	Port    int
	Pid     int // the kernel
	Holder  int // the process listening instead, 0 if unknown
	// Unbound means nothing listened on the port (when starting: for
	// StartOptions.BindGrace after the kernel named it): the kernel gave it
	// up (ipykernel's heartbeat re-picks a port taken under it without
	// rewriting the file).
	Unbound bool
}

func (e *PortOwnerError) Error() string {
	if e.Unbound {
		return fmt.Sprintf("%s port %d named by kernel pid %d has no listener: not dialling it", e.Channel, e.Port, e.Pid)
	}
	holder := "another process"
	if e.Holder > 0 {
		holder = "pid " + strconv.Itoa(e.Holder)
		if comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(e.Holder), "comm")); err == nil {
			holder += " (" + strings.TrimSpace(string(comm)) + ")"
		}
	}
	return fmt.Sprintf("%s port %d of kernel pid %d is listened on by %s, not by the kernel: not dialling it", e.Channel, e.Port, e.Pid, holder)
}

func (e *PortOwnerError) Unwrap() error { return ErrPortNotOwned }

// portCheck is what checkPortsOwned found: every port owned, some not bound
// yet (the kernel binds its heartbeat in a thread, possibly after writing
// its connection file), or an error.
type portCheck struct {
	unbound []namedPort
}

// checkPortsOwned proves that every TCP port of info is listened on by the
// kernel process pid (or a process of its session: a kernelspec may start
// the kernel through a wrapper), reading the kernel's own network namespace
// from /proc/<pid>/net and its sockets from /proc/<pid>/fd. A port listened
// on by anyone else is a *PortOwnerError. Other transports are not checked
// (ipc paths live in the kernel's 0700 directory).
func checkPortsOwned(pid int, info ConnectionInfo) (portCheck, error) {
	if info.Transport != "" && info.Transport != "tcp" {
		return portCheck{}, nil
	}
	ip := net.ParseIP(info.IP)
	if ip == nil {
		return portCheck{}, fmt.Errorf("check kernel ports: connection file ip %q is not an address", info.IP)
	}
	table := "tcp"
	if ip.To4() == nil {
		table = "tcp6"
	}
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "net", table))
	if err != nil {
		return portCheck{}, fmt.Errorf("check kernel ports: %w", err)
	}
	mine := map[uint64]bool{}
	if err := addSocketInodes(mine, pid); err != nil {
		return portCheck{}, fmt.Errorf("check kernel ports: %w", err)
	}
	wholeSession := false
	var res portCheck
	for _, p := range info.ports() {
		listeners := listeningInodes(data, p.Port, ip) // the sockets a dial to ip:port may reach
		if len(listeners) == 0 {
			res.unbound = append(res.unbound, p)
			continue
		}
		for _, ino := range listeners {
			if !mine[ino] && !wholeSession {
				// A wrapper may have started the kernel as its child: look
				// at the whole session, once, only when needed.
				if err := addSessionSocketInodes(mine, pid); err != nil {
					return portCheck{}, fmt.Errorf("check kernel ports: %w", err)
				}
				wholeSession = true
			}
			if !mine[ino] {
				holder, _ := SocketOwner(ino)
				return portCheck{}, &PortOwnerError{Channel: p.Name, Port: p.Port, Pid: pid, Holder: holder}
			}
		}
	}
	return res, nil
}

// addSessionSocketInodes adds the socket inodes open in every other
// process of the session pid leads (kernels are started with Setsid).
func addSessionSocketInodes(inodes map[uint64]bool, pid int) error {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return err
	}
	for _, p := range procs {
		other, err := strconv.Atoi(p.Name())
		if err != nil || other == pid {
			continue
		}
		if sid, err := sessionOf(other); err != nil || sid != pid {
			continue
		}
		_ = addSocketInodes(inodes, other) // it may have exited meanwhile
	}
	return nil
}

// sessionOf returns field 6 of /proc/<pid>/stat, the session id. Fields
// are counted from the last ')', as the command name may hold spaces.
func sessionOf(pid int) (int, error) {
	data, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return 0, fmt.Errorf("parse /proc/%d/stat: no command name", pid)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) < 4 {
		return 0, fmt.Errorf("parse /proc/%d/stat: %d fields", pid, len(fields)+2)
	}
	return strconv.Atoi(fields[6-3])
}

func addSocketInodes(into map[uint64]bool, pid int) error {
	dir := filepath.Join("/proc", strconv.Itoa(pid), "fd")
	fds, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("list sockets of pid %d: %w", pid, err)
	}
	for _, fd := range fds {
		link, err := os.Readlink(filepath.Join(dir, fd.Name()))
		if err != nil {
			continue
		}
		if ino, ok := socketInode(link); ok {
			into[ino] = true
		}
	}
	return nil
}

// SocketOwner returns a process holding the socket with inode ino, found
// through /proc/*/fd (only processes this user may inspect are seen). It
// only reads: nothing is signalled.
func SocketOwner(ino uint64) (int, bool) {
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return 0, false
	}
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		found := map[uint64]bool{}
		if addSocketInodes(found, pid) == nil && found[ino] {
			return pid, true
		}
	}
	return 0, false
}

// ListeningInodes returns the inodes of the TCP sockets (IPv4 and IPv6)
// listening on port, as this process's network namespace sees them.
func ListeningInodes(port int) []uint64 {
	var out []uint64
	for _, f := range []string{"/proc/net/tcp", "/proc/net/tcp6"} {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		out = append(out, listeningInodes(b, port, nil)...)
	}
	return out
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
// inodes of the sockets listening on port; with ip set, only those bound to
// ip or to the wildcard address. Lines that do not parse are skipped: the
// table is the kernel's, and a short read must not fail the check.
func listeningInodes(table []byte, port int, ip net.IP) []uint64 {
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
		if ip != nil {
			local, ok := procNetAddr(fields[1][:colon])
			if !ok || !(local.Equal(ip) || local.IsUnspecified()) {
				continue
			}
		}
		ino, err := strconv.ParseUint(fields[9], 10, 64)
		if err != nil || ino == 0 {
			continue
		}
		out = append(out, ino)
	}
	return out
}

// procNetAddr decodes an address column of /proc/net/tcp{,6}: hex of the
// address in host byte order, 32 bits at a time (little-endian here).
func procNetAddr(s string) (net.IP, bool) {
	if len(s) != 8 && len(s) != 32 {
		return nil, false
	}
	ip := make(net.IP, len(s)/2)
	for w := 0; w < len(s)/8; w++ {
		v, err := strconv.ParseUint(s[w*8:w*8+8], 16, 32)
		if err != nil {
			return nil, false
		}
		ip[w*4], ip[w*4+1], ip[w*4+2], ip[w*4+3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
	return ip, true
}
