package jupyter

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"os"
	"path/filepath"
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
// interface with a fresh 256-bit key and every port 0.
//
// Port 0 asks the kernel to bind ports of its own choosing and to write them
// back into its connection file (ipykernel does: it binds each socket to a
// random free port, then rewrites the file it was given, keeping our key).
// Ports picked by the server and bound later by the kernel could be taken
// by another process in between; a port the kernel bound itself cannot.
func NewConnectionInfo(kernelName string) (ConnectionInfo, error) {
	key := make([]byte, 32)
	if _, err := rand.Read(key); err != nil {
		return ConnectionInfo{}, fmt.Errorf("generate signing key: %w", err)
	}
	return ConnectionInfo{
		Transport:       "tcp",
		IP:              "127.0.0.1",
		Key:             hex.EncodeToString(key),
		SignatureScheme: "hmac-sha256",
		KernelName:      kernelName,
	}, nil
}

// ports returns the five ports in the order shell, iopub, stdin, control,
// hb, with the name of each.
func (c ConnectionInfo) ports() [5]namedPort {
	return [5]namedPort{{"shell", c.ShellPort}, {"iopub", c.IOPubPort}, {"stdin", c.StdinPort},
		{"control", c.ControlPort}, {"hb", c.HBPort}}
}

type namedPort struct {
	Name string
	Port int
}

// Bound reports whether every port is set: the kernel has written the ports
// it bound into the file we gave it with zeros.
func (c ConnectionInfo) Bound() bool {
	for _, p := range c.ports() {
		if p.Port <= 0 {
			return false
		}
	}
	return true
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

// ConnectionFileName is the base name of a kernel's connection file inside
// its KernelDir.
const ConnectionFileName = "connection.json"

// ConnectionFilePath is where the connection file of kernel id lives.
func ConnectionFilePath(runtimeDir, id string) string {
	return filepath.Join(KernelDir(runtimeDir, id), ConnectionFileName)
}

// LegacyConnectionFileName is the base name older servers gave the
// connection file of kernel id, directly in the runtime dir. Logs written by
// them record that path; attaching still reads it.
func LegacyConnectionFileName(id string) string { return "kernel-" + id + ".json" }

// WriteConnectionFile writes info to ConnectionFilePath(runtimeDir, id) and
// returns the path. The kernel's directory (and runtimeDir/kernels) is
// created with mode 0700 and made 0700 if it existed; the file gets mode
// 0600 and is written atomically (temporary file, fsync, rename), so a
// kernel never reads a half-written file.
func WriteConnectionFile(runtimeDir, id string, info ConnectionInfo) (string, error) {
	if id == "" || filepath.Base(id) != id || id == "." || id == ".." {
		return "", fmt.Errorf("write connection file: invalid kernel id %q", id)
	}
	dir := KernelDir(runtimeDir, id)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", fmt.Errorf("create kernel dir: %w", err)
	}
	for _, d := range []string{runtimeDir, filepath.Dir(dir), dir} {
		if err := os.Chmod(d, 0o700); err != nil {
			return "", fmt.Errorf("restrict kernel dir: %w", err)
		}
	}
	data, err := json.MarshalIndent(info, "", "  ")
	if err != nil {
		return "", fmt.Errorf("encode connection info: %w", err)
	}
	path := filepath.Join(dir, ConnectionFileName)
	tmp, err := os.CreateTemp(dir, ".connection-*.json.tmp") // CreateTemp uses mode 0600
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
