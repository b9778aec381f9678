package events

// Server lifecycle events, on stream server/<node>.
// NB: type strings must not change.
const (
	TypeServerStarted  = "ServerStarted"
	TypeServerStopped  = "ServerStopped"
	TypeLogTailDropped = "LogTailDropped"
)

// ServerStarted records a server process taking the data dir.
type ServerStarted struct {
	Node    string `json:"node"`
	Pid     int    `json:"pid"`
	Version string `json:"version"`
}

// ServerStopped records a clean shutdown.
type ServerStopped struct {
	Node   string `json:"node"`
	Reason string `json:"reason,omitempty"`
}

// LogTailDropped records, as the first event a start writes, that the
// log's tail could not be read back: events after LastGood up to Issued may
// have been acknowledged and are gone. Sequences LastGood+1..Issued are never
// used again (this event's own sequence is Issued+1), so nothing that saw
// one of them can confuse it with a later event.
type LogTailDropped struct {
	Node     string `json:"node"`
	LastGood uint64 `json:"last_good"`       // the last event that was read back
	Issued   uint64 `json:"issued"`          // the highest sequence that may have been handed out
	Bytes    int64  `json:"bytes,omitempty"` // unreadable bytes at the end of the write-ahead log
	File     string `json:"file,omitempty"`  // the write-ahead log file they were in
	Reason   string `json:"reason"`          // what was found
}

func (LogTailDropped) EventType() string { return TypeLogTailDropped }

// Explains reports whether this record, written at seq, accounts for the
// sequences missing after lastBefore: it skipped exactly those.
func (p LogTailDropped) Explains(seq, lastBefore uint64) bool {
	return p.Issued == seq-1 && p.LastGood == lastBefore
}
func (ServerStarted) EventType() string { return TypeServerStarted }
func (ServerStopped) EventType() string { return TypeServerStopped }
