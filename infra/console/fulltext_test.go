package console

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/projections/queue"
)

// heldSource answers Execution only once released (or its request ends),
// to hold fulltext requests in their merge.
type heldSource struct {
	entered chan string
	release chan struct{}
}

func (s *heldSource) Kernels(context.Context) (uint64, []Kernel, error) { return 0, nil, nil }
func (s *heldSource) Executions(context.Context, string) ([]queue.Execution, error) {
	return nil, nil
}
func (s *heldSource) Execution(ctx context.Context, id string, since uint64) (ExecutionRead, error) {
	s.entered <- id
	select {
	case <-s.release:
	case <-ctx.Done():
		return ExecutionRead{}, ctx.Err()
	}
	return ExecutionRead{Execution: queue.Execution{ID: id, KernelID: "k"},
		Outputs: []queue.Output{out(since+1, "stream", `{"name":"stdout","text":"x\n"}`)}}, nil
}
func (s *heldSource) StoreText(context.Context, string, string, []byte) (string, error) {
	return strings.Repeat("a", 64), nil
}

// TestFullTextsAtOnceBounded: while MaxFullTextsAtOnce requests merge, a
// further one never reaches the Source: it waits for a slot, and answers
// 503 "busy" if its request ends first. Once the slots free, it goes
// through.
func TestFullTextsAtOnceBounded(t *testing.T) {
	src := &heldSource{entered: make(chan string, 10), release: make(chan struct{})}
	api := New(Options{Source: src}).API()
	post := func(ctx context.Context, id string) *httptest.ResponseRecorder {
		req := httptest.NewRequestWithContext(ctx, "POST", "/ui/api/executions/"+id+"/fulltext", strings.NewReader(`{"seq":1}`))
		rec := httptest.NewRecorder()
		api.ServeHTTP(rec, req)
		return rec
	}
	var wg sync.WaitGroup
	held := make([]*httptest.ResponseRecorder, MaxFullTextsAtOnce)
	for i := range MaxFullTextsAtOnce {
		wg.Add(1)
		go func() { defer wg.Done(); held[i] = post(context.Background(), "held"+string(rune('a'+i))) }()
	}
	for range MaxFullTextsAtOnce {
		<-src.entered
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if rec := post(ctx, "third"); rec.Code != http.StatusServiceUnavailable || !strings.Contains(rec.Body.String(), "busy") {
		t.Fatalf("a third fulltext while the slots are held: %d %s", rec.Code, rec.Body)
	}
	select {
	case id := <-src.entered:
		t.Fatalf("%s reached the Source past the bound", id)
	default:
	}
	close(src.release)
	wg.Wait()
	for _, rec := range held {
		if rec.Code != http.StatusOK {
			t.Fatalf("a held fulltext: %d %s", rec.Code, rec.Body)
		}
	}
	if rec := post(context.Background(), "later"); rec.Code != http.StatusOK || !strings.Contains(rec.Body.String(), `"lines":1`) {
		t.Fatalf("after the slots freed: %d %s", rec.Code, rec.Body)
	}
}
