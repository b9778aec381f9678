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
