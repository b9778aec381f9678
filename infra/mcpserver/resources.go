package mcpserver

import (
	"context"
	"fmt"
	"strings"

	"github.com/mark3labs/mcp-go/mcp"
	"github.com/mark3labs/mcp-go/server"

	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// ExecutionScheme is the URI scheme of an execution followed as a
// resource: execution://<execution_id> (ExecutionResourceURI).
const ExecutionScheme = "execution://"

// ExecutionResourceURI is the resource an execution's status and outputs
// are read from (resources/read) and followed by (resources/subscribe,
// subscriptions/listen).
func ExecutionResourceURI(executionID string) string { return ExecutionScheme + executionID }

// mimeExecution is what an execution resource's text is: the reply
// get_execution gives, as plain text.
const mimeExecution = "text/plain"

// executionResourceTemplate is execution://{execution_id}: reading it
// gives what get_execution (since 0, wait_s 0) gives; subscribing to it
// (subscriptions.go) tells the client when that changes.
func (s *Server) executionResourceTemplate() server.ServerResourceTemplate {
	tmpl := mcp.NewResourceTemplate(ExecutionScheme+"{execution_id}", "execution",
		mcp.WithTemplateDescription("An execution's status and outputs, as get_execution gives them. "+
			"Subscribe to it (resources/subscribe, or subscriptions/listen on MCP 2026-07-28) to be told "+
			"when it prints or changes status; then read it, or call get_execution with the cursor you hold."),
		mcp.WithTemplateMIMEType(mimeExecution))
	return server.ServerResourceTemplate{Template: tmpl, Handler: s.readExecutionResource}
}

// executionIDFromURI returns the id of an execution:// URI.
func executionIDFromURI(uri string) (string, bool) {
	id, ok := strings.CutPrefix(uri, ExecutionScheme)
	if !ok || id == "" || strings.ContainsAny(id, "/?#") {
		return "", false
	}
	return id, true
}

// readExecutionResource renders the execution like get_execution: the same
// header, the same budgets (long texts cut and stored as asset:// links),
// the same access check (the backend answers an execution of a kernel the
// caller may not read as unknown). The texts and links become one text
// content; images stay images (blobs).
func (s *Server) readExecutionResource(ctx context.Context, req mcp.ReadResourceRequest) ([]mcp.ResourceContents, error) {
	uri := req.Params.URI
	id, ok := executionIDFromURI(uri)
	if !ok {
		return nil, fmt.Errorf("%w: %q is not an execution URI: use execution://<execution_id> with an id from execute or list_executions",
			server.ErrResourceNotFound, uri)
	}
	f, err := s.follow(ctx, id, 0, 0, nil)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		// NB: wraps server.ErrResourceNotFound: an unknown id and one the
		// caller may not read answer alike (the backend's words).
		return nil, fmt.Errorf("%w: %w", server.ErrResourceNotFound, err)
	}
	res := s.executionReply(f, 0)
	var text strings.Builder
	var blobs []mcp.ResourceContents
	for _, c := range res.Content {
		switch c := c.(type) {
		case mcp.TextContent:
			text.WriteString(c.Text)
			text.WriteString("\n")
		case mcp.ResourceLink:
			if c.URI == uri {
				continue // its own follow link
			}
			fmt.Fprintf(&text, "[%s: %s] %s\n", c.Name, c.URI, c.Description)
		case mcp.ImageContent:
			blobs = append(blobs, mcp.BlobResourceContents{URI: uri, MIMEType: c.MIMEType, Blob: c.Data})
		case mcp.EmbeddedResource:
			blobs = append(blobs, c.Resource)
		}
	}
	out := []mcp.ResourceContents{mcp.TextResourceContents{URI: uri, MIMEType: mimeExecution,
		Text: strings.TrimRight(text.String(), "\n")}}
	return append(out, blobs...), nil
}

// followLink is, for an execution not finished yet, a link to its
// execution:// resource: a client that subscribes to it is told when it
// changes instead of calling get_execution again and again.
func followLink(x queue.Execution) []mcp.Content {
	if x.Status.Done() {
		return nil
	}
	return []mcp.Content{mcp.NewResourceLink(ExecutionResourceURI(x.ID), "execution",
		"Subscribe to be told when this execution changes (resources/subscribe, or subscriptions/listen).", mimeExecution)}
}
