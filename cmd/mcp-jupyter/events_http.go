package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/mcp-jupyter/mcp-jupyter/events"
	"github.com/mcp-jupyter/mcp-jupyter/infra/eventlog"
	"github.com/mcp-jupyter/mcp-jupyter/infra/mcpserver"
)

// The read-only events API of a running server, behind the same bearer
// token as /mcp (mcpserver.Guard). NB: public API, used by `mcp-jupyter
// events` against a running server:
//
//	GET /events/bounds                  {"first":1,"last":42} (the whole
//	                                    log's, for every reader)
//	GET /events/{seq}                   one event, JSON
//	GET /events?since=S[&to=T][&stream=kind/id][&follow=1]
//	                                    JSON Lines, events with S < seq <= T;
//	                                    follow keeps the response open and
//	                                    streams new events as they become
//	                                    durable. A failure mid-stream ends it
//	                                    with a line {"error":"..."}.
//
// Followers end when ctx does (the server shutting down).
//
// filter gives, for a request, the events its principal may read (nil
// func: every one, an admin); an error refuses the request (403). A nil
// filter serves everything (one trusted token). An event a principal may
// not read is absent from every answer: /events/{seq} says 404 exactly as
// for a seq the log does not hold.
func eventsHandler(ctx context.Context, l *eventlog.Log, filter func(*http.Request) (func(*events.Event) bool, error)) http.Handler {
	mux := http.NewServeMux()
	visible := func(w http.ResponseWriter, r *http.Request) (func(*events.Event) bool, bool) {
		if filter == nil {
			return nil, true
		}
		may, err := filter(r)
		if err != nil {
			writeJSON(w, http.StatusForbidden, map[string]string{"error": err.Error()})
			return nil, false
		}
		return may, true
	}
	mux.HandleFunc("GET /events/bounds", func(w http.ResponseWriter, r *http.Request) {
		if _, ok := visible(w, r); !ok {
			return
		}
		// NB: to every reader, unfiltered: `mcp-jupyter events` pages by
		// them. They tell how many events the server recorded in all (the
		// seq counter every event carries), not whose or what: see
		// docs/identity.md, "The live edges by principal".
		writeJSON(w, 200, map[string]uint64{"first": l.First(), "last": l.Last()})
	})
	mux.HandleFunc("GET /events/{seq}", func(w http.ResponseWriter, r *http.Request) {
		may, ok := visible(w, r)
		if !ok {
			return
		}
		seq, err := strconv.ParseUint(r.PathValue("seq"), 10, 64)
		if err != nil {
			writeJSON(w, 400, map[string]string{"error": "give a sequence number: GET /events/42"})
			return
		}
		e, err := l.Get(seq)
		if may != nil && (errors.Is(err, eventlog.ErrNotFound) || (err == nil && !may(&e))) {
			// NB: one answer for a seq the log does not hold and one the
			// principal may not read (which the log holds: naming the
			// log's bounds would contradict "not found" and tell it exists).
			err = fmt.Errorf("event %d: %w, or not visible to you (you read the events of kernels you may read "+
				"and those you caused): list yours with GET /events?since=0", seq, eventlog.ErrNotFound)
		}
		if err != nil {
			status := 500
			if errors.Is(err, eventlog.ErrNotFound) {
				status = 404
			}
			writeJSON(w, status, map[string]string{"error": err.Error()})
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(appendEventJSON(nil, e))
	})
	mux.HandleFunc("GET /events", func(w http.ResponseWriter, r *http.Request) {
		rctx, cancel := context.WithCancel(r.Context())
		defer cancel()
		defer context.AfterFunc(ctx, cancel)()
		r = r.WithContext(rctx)
		may, ok := visible(w, r) // NB: after: its waits end with the follower
		if !ok {
			return
		}
		q := r.URL.Query()
		var since, to uint64
		for name, dst := range map[string]*uint64{"since": &since, "to": &to} {
			if v := q.Get(name); v != "" {
				n, err := strconv.ParseUint(v, 10, 64)
				if err != nil {
					writeJSON(w, 400, map[string]string{"error": fmt.Sprintf("%s=%q: give a sequence number", name, v)})
					return
				}
				*dst = n
			}
		}
		if q.Has("since") && q.Get("stream") == "" {
			// NB: a cursor retention passed is refused up front (410),
			// naming the setting, rather than served with a gap.
			if err := l.CheckAfter(since); err != nil {
				writeJSON(w, http.StatusGone, map[string]string{"error": err.Error()})
				return
			}
		}
		if since == 0 && q.Get("stream") == "" {
			since = l.First() - 1 // NB: no since: what is retained (kept streams below First are not in order)
		}
		w.Header().Set("Content-Type", "application/x-ndjson")
		w.WriteHeader(200)
		rc := http.NewResponseController(w)
		out := bufio.NewWriterSize(w, 64<<10)
		var line []byte
		write := func(e events.Event) error {
			if may != nil && !may(&e) {
				return nil
			}
			line = append(appendEventJSON(line[:0], e), '\n')
			_, err := out.Write(line)
			return err
		}
		var err error
		switch {
		case q.Get("stream") != "":
			err = l.ReadStream(r.Context(), q.Get("stream"), since, func(e events.Event) error {
				if to != 0 && e.Seq > to {
					return eventlog.ErrStop
				}
				return write(e)
			})
		case q.Get("follow") != "":
			err = l.FollowRaw(r.Context(), since, func(e events.Event) error {
				if err := write(e); err != nil {
					return err
				}
				if e.Seq >= l.Last() { // caught up: let the reader see it now
					if err := out.Flush(); err != nil {
						return err
					}
					return rc.Flush()
				}
				return nil
			})
		default:
			err = l.Scan(r.Context(), since+1, to, write)
		}
		if err != nil && r.Context().Err() == nil {
			msg, _ := json.Marshal(map[string]string{"error": err.Error()})
			_, _ = out.Write(append(msg, '\n'))
		}
		_ = out.Flush()
	})
	return mux
}

// httpSource reads the log of a running server through eventsHandler.
type httpSource struct {
	base        string
	token       string
	client      *http.Client
	first, last uint64
}

func openHTTPSource(ctx context.Context, f eventsFlags) (*httpSource, error) {
	token := f.token
	if token == "" {
		b, err := os.ReadFile(filepath.Join(f.dataDir, mcpserver.TokenFile))
		if err != nil {
			return nil, fmt.Errorf("read the bearer token: %w (give --token)", err)
		}
		token = strings.TrimSpace(string(b))
	}
	base := f.addr
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	h := &httpSource{base: strings.TrimRight(base, "/"), token: token, client: &http.Client{}}
	var b struct{ First, Last uint64 }
	if err := h.getJSON(ctx, "/events/bounds", &b); err != nil {
		return nil, err
	}
	h.first, h.last = b.First, b.Last
	return h, nil
}

func (h *httpSource) get(ctx context.Context, path string) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, "GET", h.base+path, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Authorization", "Bearer "+h.token)
	resp, err := h.client.Do(req)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != 200 {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
		resp.Body.Close()
		var e struct{ Error string }
		if json.Unmarshal(body, &e) == nil && e.Error != "" {
			return nil, fmt.Errorf("GET %s: %s", path, e.Error)
		}
		return nil, fmt.Errorf("GET %s: %s: %s", path, resp.Status, strings.TrimSpace(string(body)))
	}
	return resp, nil
}

func (h *httpSource) getJSON(ctx context.Context, path string, v any) error {
	resp, err := h.get(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// lines reads a JSON Lines response into events, refreshing last.
func (h *httpSource) lines(ctx context.Context, path string, fn func(events.Event) error) error {
	resp, err := h.get(ctx, path)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1<<20), maxLine)
	for sc.Scan() {
		line := sc.Bytes()
		if bytes.HasPrefix(line, []byte(`{"error":`)) {
			var e struct{ Error string }
			_ = json.Unmarshal(line, &e)
			return fmt.Errorf("server: %s", e.Error)
		}
		var e events.Event
		if err := json.Unmarshal(line, &e); err != nil {
			return err
		}
		h.last = max(h.last, e.Seq)
		if err := fn(e); err != nil {
			if errors.Is(err, eventlog.ErrStop) {
				return nil
			}
			return err
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("read events from %s: %w", h.base, err)
	}
	return ctx.Err()
}

func (h *httpSource) First() uint64 { return h.first }
func (h *httpSource) Last() uint64  { return h.last }
func (h *httpSource) Close() error  { h.client.CloseIdleConnections(); return nil }

func (h *httpSource) Scan(ctx context.Context, from, to uint64, fn func(events.Event) error) error {
	if from == 0 {
		from = 1
	}
	if to == 0 {
		to = h.last
	}
	return h.lines(ctx, fmt.Sprintf("/events?since=%d&to=%d", from-1, to), fn)
}

func (h *httpSource) FollowRaw(ctx context.Context, after uint64, fn func(events.Event) error) error {
	return h.lines(ctx, fmt.Sprintf("/events?since=%d&follow=1", after), fn)
}

func (h *httpSource) ReadStream(ctx context.Context, stream string, after uint64, fn func(events.Event) error) error {
	return h.lines(ctx, fmt.Sprintf("/events?since=%d&stream=%s", after, url.QueryEscape(stream)), fn)
}

func (h *httpSource) Get(seq uint64) (events.Event, error) {
	var e events.Event
	err := h.getJSON(context.Background(), "/events/"+strconv.FormatUint(seq, 10), &e)
	return e, err
}
