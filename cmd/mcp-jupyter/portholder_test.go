package main

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPortHolderFindsARealListener: the process listening on a port is
// found through /proc, for IPv4 and IPv6.
func TestPortHolderFindsARealListener(t *testing.T) {
	for _, network := range []string{"tcp4", "tcp6"} {
		addr := "127.0.0.1:0"
		if network == "tcp6" {
			addr = "[::1]:0"
		}
		// NB: another process may listen on the same port number in the
		// other family (a kernel on [::]:P while we hold 127.0.0.1:P): such
		// a port names two holders, so pick one that only we hold.
		var h holder
		var ok bool
		var port int
		for attempt := 0; attempt < 5; attempt++ {
			ln, err := net.Listen(network, addr)
			if err != nil {
				t.Fatalf("listen %s: %v", network, err)
			}
			port = ln.Addr().(*net.TCPAddr).Port
			h, ok = portHolder(port)
			ln.Close()
			if ok && h.Pid == os.Getpid() {
				break
			}
		}
		if !ok || h.Pid != os.Getpid() {
			t.Fatalf("%s port %d: holder %+v, %v; want pid %d", network, port, h, ok, os.Getpid())
		}
		exe, _ := os.Executable()
		if !strings.Contains(h.Cmdline, filepath.Base(exe)) {
			t.Errorf("holder cmdline %q does not name %s", h.Cmdline, filepath.Base(exe))
		}
	}
	if _, ok := portHolder(1); ok {
		t.Error("a holder was found for port 1, which nothing here listens on")
	}
}

const procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0BB8 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1
   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0
`

func TestListeningInodes(t *testing.T) {
	if got := listeningInodes([]byte(procNetTCP), 3000); len(got) != 1 || got[0] != 4242 {
		t.Fatalf("port 3000: %v, want [4242] (the established socket is not a listener)", got)
	}
	if got := listeningInodes([]byte(procNetTCP), 8080); len(got) != 1 || got[0] != 99 {
		t.Fatalf("port 8080: %v, want [99]", got)
	}
	for _, bad := range []string{"", "header only", "h\n 0: zz:zz 0 0A a b c d e f", "h\n 0: 0100007F:0BB8 x 0A a b c d e notanumber"} {
		if got := listeningInodes([]byte(bad), 3000); len(got) != 0 {
			t.Errorf("%q: %v, want nothing", bad, got)
		}
	}
	for link, want := range map[string]uint64{"socket:[123]": 123, "pipe:[5]": 0, "socket:[]": 0, "socket:[12": 0, "/dev/null": 0} {
		got, ok := socketInode(link)
		if got != want || ok != (want != 0) {
			t.Errorf("socketInode(%q) = %d, %v", link, got, ok)
		}
	}
}

// FuzzListeningInodes: the /proc/net/tcp parser never panics, and what it
// returns is a non-zero inode from the input.
func FuzzListeningInodes(f *testing.F) {
	f.Add([]byte(procNetTCP), 3000)
	f.Add([]byte("h\n 0: :0BB8 0 0A 0 0 0 0 0 1"), 3000)
	f.Fuzz(func(t *testing.T, table []byte, port int) {
		for _, ino := range listeningInodes(table, port) {
			if ino == 0 {
				t.Fatalf("zero inode from %q", table)
			}
		}
	})
}
