package jupyter

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ConnectionInfo is the content of a Jupyter connection file: where the
// kernel listens and the key that signs every message.
//
// NB: the JSON field names are the Jupyter standard and must not change;
// kernels read them.
type ConnectionInfo struct {
	Transport       string `json:"transport"`
	IP              string `json:"ip"`
	ShellPort       int    `json:"shell_port"`
	IOPubPort       int    `json:"iopub_port"`
	StdinPort       int    `json:"stdin_port"`
	ControlPort     int    `json:"control_port"`
	HBPort          int    `json:"hb_port"`
	Key             string `json:"key"`
	SignatureScheme string `json:"signature_scheme"`
	KernelName      string `json:"kernel_name"`
}

// NewConnectionInfo returns connection info for a kernel on the loopback
// interface, with five currently free TCP ports and a fresh 256-bit key.
//
// The ports are found by binding port 0 and closing the listener, so another
// process may grab one before the kernel binds it; the kernel then fails to
// start and the caller sees that as a start error.
func NewConnectionInfo(kernelName string) (ConnectionInfo, error) {
	return newConnectionInfo(kernelName, freePorts)
}

func newConnectionInfo(kernelName string, allocate func(n int) ([]int, error)) (ConnectionInfo, error) {
	ports, err := allocate(5)
	if err != nil {
		return ConnectionInfo{}, fmt.Errorf("allocate kernel ports: %w", err)
	}
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return ConnectionInfo{}, fmt.Errorf("generate signing key: %w", err)
	}
	return ConnectionInfo{
		Transport:       "tcp",
		IP:              "127.0.0.1",
		ShellPort:       ports[0],
		IOPubPort:       ports[1],
		StdinPort:       ports[2],
		ControlPort:     ports[3],
		HBPort:          ports[4],
		Key:             hex.EncodeToString(key),
		SignatureScheme: "hmac-sha256",
		KernelName:      kernelName,
	}, nil
}

// freePorts holds all listeners open until every port is chosen, so the n
// ports are distinct.
func freePorts(n int) ([]int, error) {
	ports := make([]int, 0, n)
	listeners := make([]net.Listener, 0, n)
	defer func() {
		for _, l := range listeners {
			_ = l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("listen on loopback: %w", err)
		}
		listeners = append(listeners, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// Ports hands out loopback ports for kernels started by one server. A
// port just found free is not bound until the kernel starts, so two kernels
// starting at once could be given the same one; Ports remembers what it
// handed out for Hold and never gives it again meanwhile. Safe for
// concurrent use; the zero value is ready.
type Ports struct {
	// Hold is how long a port stays reserved (default 2 minutes, longer
	// than any kernel takes to bind).
	Hold time.Duration

	mu     sync.Mutex
	recent map[int]time.Time
}

// maxReserved bounds the reservations kept (oldest forgotten first).
const maxReserved = 4096

func (p *Ports) allocate(n int) ([]int, error) {
	if p == nil {
		return freePorts(n)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	hold := p.Hold
	if hold <= 0 {
		hold = 2 * time.Minute
	}
	now := time.Now()
	if p.recent == nil {
		p.recent = map[int]time.Time{}
	}
	for port, at := range p.recent {
		if now.Sub(at) > hold || len(p.recent) > maxReserved {
			delete(p.recent, port)
		}
	}
	for attempt := 0; attempt < 20; attempt++ {
		ports, err := freePorts(n)
		if err != nil {
			return nil, err
		}
		clash := false
		for _, port := range ports {
			if _, ok := p.recent[port]; ok {
				clash = true
			}
		}
		if clash {
			continue
		}
		for _, port := range ports {
			p.recent[port] = now
		}
		return ports, nil
	}
	return nil, fmt.Errorf("allocate kernel ports: the system kept offering ports reserved for kernels still starting")
}

// endpoint returns the ZeroMQ address of a port, e.g. "tcp://127.0.0.1:5555".
func (c ConnectionInfo) endpoint(port int) string {
	transport := c.Transport
	if transport == "" {
		transport = "tcp"
	}
	if transport == "ipc" {
		return fmt.Sprintf("ipc://%s-%d", c.IP, port)
	}
	return fmt.Sprintf("%s://%s", transport, net.JoinHostPort(c.IP, fmt.Sprint(port)))
}

// ConnectionFileName is the base name of the connection file for kernel id.
func ConnectionFileName(id string) string { return "kernel-" + id + ".json" }

// WriteConnectionFile writes info to dir/kernel-<id>.json and returns the path.
// dir is created with mode 0700 if needed; the file gets mode 0600 and is
// written atomically (temporary file, fsync, rename), so a kernel never reads
// a half-written file.
func WriteConnectionFile(dir, id string, info ConnectionInfo) (string, error) {
	if id == "" || filepath.Base(id) != id {
		return "", fmt.Errorf("write connection file: invalid kernel id %q", id)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create runtime dir: %w", err)
	}
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode connection info: %w", err)
	}
	path := filepath.Join(dir, ConnectionFileName(id))
	tmp, err := os.CreateTemp(dir, ".kernel-*.json.tmp") // CreateTemp uses mode 0600
	if err != nil {
		return "", fmt.Errorf("create connection file: %w", err)
	}
	defer os.Remove(tmp.Name()) // no-op after a successful rename
	if _, err := tmp.Write(data); err != nil {
		_ = tmp.Close()
		return "", fmt.Errorf("write connection file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		_ = tmp.Close()
		return "", fmt.Errorf("sync connection file: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return "", fmt.Errorf("close connection file: %w", err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return "", fmt.Errorf("rename connection file: %w", err)
	}
	return path, nil
}

// ReadConnectionFile reads a connection file written by WriteConnectionFile
// or by any Jupyter tool.
func ReadConnectionFile(path string) (ConnectionInfo, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return ConnectionInfo{}, fmt.Errorf("read connection file: %w", err)
	}
	var info ConnectionInfo
	if err := json.Unmarshal(data, &info); err != nil {
		return ConnectionInfo{}, fmt.Errorf("decode connection file %s: %w", path, err)
	}
	return info, nil
}
