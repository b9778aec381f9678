package events

import "encoding/json"

// IOPub traffic. NB: type strings must not change.
const (
	TypeIOPubMessageReceived = "IOPubMessageReceived"
	TypeIOPubGapRecorded     = "IOPubGapRecorded"
)

// IOPubMessageReceived is one message the kernel published on IOPub. It is on
// the stream of the execution whose request is its parent, or on the kernel's
// stream when no execution of ours caused it. NB: a message is never
// attributed to an execution other than its parent.
type IOPubMessageReceived struct {
	KernelID    string `json:"kernel_id"`
	ExecutionID string `json:"execution_id,omitempty"`
	MsgID       string `json:"msg_id"`
	ParentMsgID string `json:"parent_msg_id,omitempty"`
	MsgType     string `json:"msg_type"`
	// Content is the message content as the kernel sent it.
	Content json.RawMessage `json:"content"`
}

// IOPubGapRecorded: messages were lost between the kernel and the log (the
// reader's bounded queue overflowed). Completion still resolves.
type IOPubGapRecorded struct {
	KernelID string `json:"kernel_id"`
	Dropped  int    `json:"dropped"`
	Reason   string `json:"reason"`
}

func (IOPubMessageReceived) EventType() string { return TypeIOPubMessageReceived }
func (IOPubGapRecorded) EventType() string     { return TypeIOPubGapRecorded }
