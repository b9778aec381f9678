package main

import (
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/mark3labs/mcp-go/client"

	"github.com/mcp-jupyter/mcp-jupyter/testkit"
)

// consoleSite is an in-process server on a real HTTP port, for tests that
// look at the web console in a real browser while agents work over MCP.
type consoleSite struct {
	c       *core
	ts      *httptest.Server
	connect func() *client.Client // an in-process agent (the admin principal)
	browser *testkit.Browser
}

// startConsoleSite opens a core, serves it over HTTP and starts Chromium.
func startConsoleSite(t testing.TB) *consoleSite {
	t.Helper()
	c, connect := inProcess(t)
	ts := httptest.NewServer(c.httpHandler())
	t.Cleanup(ts.Close)
	return &consoleSite{c: c, ts: ts, connect: connect, browser: testkit.StartBrowser(t)}
}

// consoleURL is the console's address with the token once in ?token= (as
// `mcp-jupyter serve` prints it), plus any fragment (a view's address).
func (s *consoleSite) consoleURL(token, fragment string) string {
	u := s.ts.URL + "/ui/"
	if token != "" {
		u += "?token=" + url.QueryEscape(token)
	}
	if fragment != "" {
		u += "#" + fragment
	}
	return u
}

// open opens the console in a new tab of width x height (0, 0: desktop),
// logged in with the admin token.
func (s *consoleSite) open(t testing.TB, width, height int, fragment string) *testkit.Page {
	t.Helper()
	p := s.browser.NewPage(width, height)
	if st := p.Goto(t, s.consoleURL(s.c.token, fragment)); st != 200 {
		t.Fatalf("GET /ui/: status %d", st)
	}
	return p
}
