package eventlog_test

import (
	"github.com/mcp-jupyter/mcp-jupyter/actors"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
)

var _ actors.Log = (*eventlog.Log)(nil)
