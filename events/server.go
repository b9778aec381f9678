package events

// Server lifecycle events, on stream server/<node>.
// NB: type strings must not change.
const (
	TypeServerStarted = "ServerStarted"
	TypeServerStopped = "ServerStopped"
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

func (ServerStarted) EventType() string { return TypeServerStarted }
func (ServerStopped) EventType() string { return TypeServerStopped }
