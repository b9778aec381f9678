package events

// Events of Jupyter frontends (JupyterLab, VS Code, @jupyterlab/services
// clients) attached to a kernel through the Jupyter Server API, on stream
// kernel/<id>. NB: type strings must not change.
const (
	TypeFrontendAttached    = "FrontendAttached"
	TypeKernelSessionOpened = "KernelSessionOpened"
	TypeKernelSessionClosed = "KernelSessionClosed"
)

// Origin says where an execution came from when it was not an MCP tool
// call: a Jupyter frontend's execute_request on the channels WebSocket.
// Its request header's msg_id and session let the server answer that
// frontend (parent_header) again after a reconnect or a restart.
type Origin struct {
	Kind     string `json:"kind"`               // OriginFrontend
	Session  string `json:"session"`            // the frontend's session (its header's session, the WebSocket's session_id)
	MsgID    string `json:"msg_id"`             // its execute_request's msg_id
	Username string `json:"username,omitempty"` // its header's username (what the frontend says; By is who authenticated)
	Client   string `json:"client,omitempty"`   // the frontend as it named itself (User-Agent), clipped
}

// OriginFrontend: an execute_request from a Jupyter frontend.
const OriginFrontend = "frontend"

// FrontendAttached: a frontend opened the channels WebSocket of the kernel
// with this session id (recorded once per session and server process). A
// session seen before lets a reconnect after a server restart be served
// what was recorded while it was away.
type FrontendAttached struct {
	KernelID string `json:"kernel_id"`
	Session  string `json:"session"`
	Username string `json:"username,omitempty"`
	Client   string `json:"client,omitempty"`
	Framing  string `json:"framing"` // "v1.kernel.websocket.jupyter.org" or "legacy"
}

// KernelSessionOpened: a Jupyter session (/api/sessions) binds a notebook
// or console path to the kernel. SessionID is a UUID, as frontends expect.
type KernelSessionOpened struct {
	KernelID  string `json:"kernel_id"`
	SessionID string `json:"session_id"`
	Path      string `json:"path"`
	Name      string `json:"name,omitempty"`
	Type      string `json:"type,omitempty"` // notebook, console, file
}

// KernelSessionClosed: the session was deleted or moved to another kernel
// (Reason says which), or its kernel shut down.
type KernelSessionClosed struct {
	KernelID  string `json:"kernel_id"`
	SessionID string `json:"session_id"`
	Reason    string `json:"reason,omitempty"`
}

func (FrontendAttached) EventType() string    { return TypeFrontendAttached }
func (KernelSessionOpened) EventType() string { return TypeKernelSessionOpened }
func (KernelSessionClosed) EventType() string { return TypeKernelSessionClosed }
