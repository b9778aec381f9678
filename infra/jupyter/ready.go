package jupyter

import (
	"context"
	"encoding/json"
	"fmt"
	"time"
)

// KernelInfo is the content of a kernel_info_reply.
type KernelInfo struct {
	Status                string `json:"status"`
	ProtocolVersion       string `json:"protocol_version"`
	Implementation        string `json:"implementation"`
	ImplementationVersion string `json:"implementation_version"`
	LanguageInfo          struct {
		Name          string `json:"name"`
		Version       string `json:"version"`
		MimeType      string `json:"mimetype"`
		FileExtension string `json:"file_extension"`
	} `json:"language_info"`
	Banner string `json:"banner"`
	// Raw is the full reply content.
	Raw json.RawMessage `json:"-"`
}

// readyAttempt is how long WaitReady waits for one kernel_info_request.
const readyAttempt = time.Second

// WaitReady returns once the kernel answered a kernel_info_request and at
// least one IOPub message has arrived, which proves the IOPub subscription
// is active (a SUB subscription takes effect asynchronously; output
// published before that is lost). Like jupyter_client it re-sends
// kernel_info_request every second until both are true or ctx ends.
//
// WaitReady consumes from Messages: call it before starting the consumer.
func (c *Client) WaitReady(ctx context.Context) (KernelInfo, error) {
	info, _, err := c.WaitReadyOn(ctx, Shell)
	return info, err
}

// WaitReadyOn is WaitReady asking on ch. Asking on Control gets an answer
// from a kernel busy with a long execution (re-attaching after a server
// restart); the messages it read that were not its own (the running
// execution's output) are returned so the caller can deliver them first,
// and so are its own, marked Consumed, so that a consumer counting the
// kernel's messages sees every one it read.
func (c *Client) WaitReadyOn(ctx context.Context, ch Channel) (KernelInfo, []Received, error) {
	var stash []Received
	info, err := c.waitReady(ctx, ch, func(r Received) { stash = append(stash, r) }, func(r Received) {
		r.Consumed = true
		stash = append(stash, r)
	})
	return info, stash, err
}

func (c *Client) waitReady(ctx context.Context, ch Channel, other func(Received), own ...func(Received)) (KernelInfo, error) {
	sent := map[string]bool{}
	var (
		info     KernelInfo
		gotReply bool
		gotIOPub bool
	)
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return KernelInfo{}, fmt.Errorf("wait for kernel_info_reply (reply=%t iopub=%t): %w", gotReply, gotIOPub, ctx.Err())
		case <-c.hbLost:
			return KernelInfo{}, fmt.Errorf("wait for kernel_info_reply: kernel heartbeat lost")
		case <-timer.C:
			h, err := c.Send(ch, "kernel_info_request", nil)
			if err != nil {
				return KernelInfo{}, fmt.Errorf("send kernel_info_request: %w", err)
			}
			sent[h.MsgID] = true
			timer.Reset(readyAttempt)
		case r, ok := <-c.out:
			if !ok {
				return KernelInfo{}, ErrClosed
			}
			switch {
			case r.Channel == IOPub:
				gotIOPub = true
				if !sent[r.Msg.Parent.MsgID] {
					other(r)
				} else {
					for _, f := range own {
						f(r)
					}
				}
			case r.Channel == ch && r.Msg.Header.MsgType == "kernel_info_reply" && sent[r.Msg.Parent.MsgID]:
				if err := json.Unmarshal(r.Msg.Content, &info); err != nil {
					return KernelInfo{}, fmt.Errorf("decode kernel_info_reply: %w", err)
				}
				info.Raw = r.Msg.Content
				gotReply = true
				for _, f := range own {
					f(r)
				}
			default:
				other(r)
			}
			if gotReply && gotIOPub {
				return info, nil
			}
		}
	}
}

// ExecuteRequest is the content of an execute_request.
type ExecuteRequest struct {
	Code            string            `json:"code"`
	Silent          bool              `json:"silent"`
	StoreHistory    bool              `json:"store_history"`
	UserExpressions map[string]string `json:"user_expressions"`
	AllowStdin      bool              `json:"allow_stdin"`
	StopOnError     bool              `json:"stop_on_error"`
}

// NewExecuteRequest returns the request this server sends by default:
// history stored, no stdin (input() raises at once instead of hanging) and
// stop_on_error false (true makes ipykernel abort requests that race with
// a failing one).
func NewExecuteRequest(code string) ExecuteRequest {
	return ExecuteRequest{Code: code, StoreHistory: true, UserExpressions: map[string]string{}}
}
