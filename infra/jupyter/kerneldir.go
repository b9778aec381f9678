package jupyter

import "path/filepath"

// KernelDir is the one directory of the data dir a kernel may use: its
// connection file and its checkpoint hand-off socket live there.
func KernelDir(runtimeDir, id string) string { return filepath.Join(kernelsDir(runtimeDir), id) }

// kernelsDir holds every kernel's KernelDir.
func kernelsDir(runtimeDir string) string { return filepath.Join(runtimeDir, "kernels") }
