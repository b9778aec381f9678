package main

import "context"

// startRestores loads the auto-checkpoint of every kernel relaunched at
// recovery (system.Restoring), in goroutines the core owns, and finishes
// each restore (system.FinishRestore) with what was and was not restored.
// TODO(issue 18, helper restore-edge).
func (c *core) startRestores(ctx context.Context) {}
