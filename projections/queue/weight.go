package queue

// executionWeight is what an execution's fixed fields weigh (ids, times,
// seqs, status) beside its variable text.
const executionWeight = 512

// Weight is roughly the bytes the model holds: per execution a constant
// plus its code, error and traceback text. It reads the model without
// copying or encoding anything (no allocation), so a cache can weigh a
// state it keeps at no cost (cmd/mcp-jupyter/console_then.go).
func (m *Model) Weight() int {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := 0
	for _, x := range m.executions {
		n += executionWeight + len(x.Code) + len(x.ErrorValue) + len(x.Reason) + len(x.Prompt) + len(x.Notebook)
		for _, line := range x.Traceback {
			n += len(line)
		}
	}
	return n
}
