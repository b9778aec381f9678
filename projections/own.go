package projections

import "github.com/mcp-jupyter/mcp-jupyter/events"

// WrittenBy wraps p so that it folds only the records node wrote. In a
// cluster each node's log also holds the records it imported from the
// other nodes (foreign records, whose Node is their writer): the read
// models that answer for the whole cluster fold them, but a model that
// describes this node's own work (its metrics, the processes it started)
// must not. The wrapper keeps p's name, so its snapshots stay valid: a
// log written before it joined a cluster holds only its own records.
//
// NB: only in a cluster, where a node's name is stable: a single server's
// name changes with each process (host-pid), and its whole log is its own.
func WrittenBy(node string, p Projection) Projection { return writtenBy{node: node, Projection: p} }

type writtenBy struct {
	node string
	Projection
}

func (w writtenBy) Apply(e events.Event) error {
	if e.Node != w.node {
		return nil
	}
	return w.Projection.Apply(e)
}
