package jupyter

import (
	"net"
	"testing"
)

const procNetTCP = `  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 0100007F:0BB8 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 4242 1 0000000000000000 100 0 0 10 0
   1: 0100007F:0BB8 0100007F:D2A4 01 00000000:00000000 00:00000000 00000000     0        0 4343 1 0000000000000000 20 4 30 10 -1
   2: 00000000:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 99 1 0000000000000000 100 0 0 10 0
   3: 0200007F:1F91 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 77 1 0000000000000000 100 0 0 10 0
`

func TestListeningInodes(t *testing.T) {
	if got := listeningInodes([]byte(procNetTCP), 3000, nil); len(got) != 1 || got[0] != 4242 {
		t.Fatalf("port 3000: %v, want [4242] (the established socket is not a listener)", got)
	}
	if got := listeningInodes([]byte(procNetTCP), 8080, nil); len(got) != 1 || got[0] != 99 {
		t.Fatalf("port 8080: %v, want [99]", got)
	}
	loopback := net.ParseIP("127.0.0.1")
	if got := listeningInodes([]byte(procNetTCP), 8080, loopback); len(got) != 1 || got[0] != 99 {
		t.Fatalf("port 8080 at 127.0.0.1: %v, want the wildcard listener [99]", got)
	}
	if got := listeningInodes([]byte(procNetTCP), 8081, loopback); len(got) != 0 {
		t.Fatalf("port 8081 at 127.0.0.1: %v, want nothing (the listener is on 127.0.0.2)", got)
	}
	for _, bad := range []string{"", "header only", "h\n 0: zz:zz 0 0A a b c d e f", "h\n 0: 0100007F:0BB8 x 0A a b c d e notanumber"} {
		if got := listeningInodes([]byte(bad), 3000, nil); len(got) != 0 {
			t.Errorf("%q: %v, want nothing", bad, got)
		}
	}
	for link, want := range map[string]uint64{"socket:[123]": 123, "pipe:[5]": 0, "socket:[]": 0, "socket:[12": 0, "/dev/null": 0} {
		got, ok := socketInode(link)
		if got != want || ok != (want != 0) {
			t.Errorf("socketInode(%q) = %d, %v", link, got, ok)
		}
	}
	if ip, ok := procNetAddr("00000000000000000000000001000000"); !ok || !ip.Equal(net.IPv6loopback) {
		t.Errorf("::1 decoded as %v, %v", ip, ok)
	}
}

// FuzzListeningInodes: the /proc/net/tcp parser never panics, and what it
// returns is a non-zero inode from the input.
func FuzzListeningInodes(f *testing.F) {
	f.Add([]byte(procNetTCP), 3000)
	f.Add([]byte("h\n 0: :0BB8 0 0A 0 0 0 0 0 1"), 3000)
	f.Fuzz(func(t *testing.T, table []byte, port int) {
		for _, ip := range []net.IP{nil, net.ParseIP("127.0.0.1"), net.IPv6loopback} {
			for _, ino := range listeningInodes(table, port, ip) {
				if ino == 0 {
					t.Fatalf("zero inode from %q", table)
				}
			}
		}
	})
}
