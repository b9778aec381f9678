package main

import "context"

// startCuller shuts down, every so often until ctx ends, the kernels idle
// longer than --cull-idle (auto-checkpoint first). TODO(issue 18, helper
// cull-guard).
func (c *core) startCuller(ctx context.Context) {}
