package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/mcp-jupyter/mcp-jupyter/infra/guard"
)

// serverLockPath is the lock a server holds for its whole life, which the
// kernels' guards probe (--orphan-grace; infra/guard).
func serverLockPath(dataDir string) string {
	return filepath.Join(dataDir, "runtime", guard.LockFile)
}

// holdServerLock takes the server lock, before any kernel starts or is
// re-attached: while it is held, no guard ends a kernel. Taken whatever
// --orphan-grace says, since guards of kernels an earlier server started
// (with another setting) still watch it.
func (c *core) holdServerLock() error {
	path := serverLockPath(c.cfg.DataDir)
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("create runtime dir: %w", err)
	}
	lock, err := guard.Hold(path)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.serverLock = lock
	c.mu.Unlock()
	return nil
}

// releaseServerLock drops the lock at the very end of close (a process
// exit drops it anyway): from then on the kernels' guards count the grace.
func (c *core) releaseServerLock() error {
	c.mu.Lock()
	lock := c.serverLock
	c.serverLock = nil
	c.mu.Unlock()
	return lock.Close()
}
