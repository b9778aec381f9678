package eventlog_test

import (
	"testing"

	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/testkit"
	"github.com/mcp-jupyter/mcp-jupyter/testkit/eventlogtest"
)

func TestConformance(t *testing.T) {
	eventlogtest.Run(t, func(t testing.TB, dir string) *eventlog.Log { return testkit.OpenLog(t, dir) })
}
