package auth

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/atomicfile"
)

func bearerRequest(tok string) *http.Request {
	r, _ := http.NewRequest("GET", "http://localhost/mcp", nil)
	if tok != "" {
		r.Header.Set("Authorization", "Bearer "+tok)
	}
	return r
}

func TestStoreAddListRevokeRotate(t *testing.T) {
	dir := t.TempDir()
	s := Store{Dir: dir}
	tok, err := s.Add("alice", ScopeRead|ScopeExecute, 3)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(tok, TokenPrefix) || len(tok) != len(TokenPrefix)+64 {
		t.Errorf("token %q: want %s and 64 hex digits", tok, TokenPrefix)
	}
	data, err := os.ReadFile(filepath.Join(dir, PrincipalsFile))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(data), tok) || strings.Contains(string(data), strings.TrimPrefix(tok, TokenPrefix)) {
		t.Fatalf("the principals file holds the token in clear:\n%s", data)
	}
	if !strings.Contains(string(data), HashToken(tok).String()) {
		t.Fatalf("the principals file lacks the token's hash:\n%s", data)
	}
	if fi, _ := os.Stat(filepath.Join(dir, PrincipalsFile)); fi.Mode().Perm() != 0o600 {
		t.Errorf("principals file mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := s.Add("alice", ScopeRead, 0); !errors.Is(err, ErrPrincipalExists) {
		t.Errorf("second add: %v, want ErrPrincipalExists", err)
	}
	for _, bad := range []string{"admin", "oidc:bob", "Alice", "-x", "", strings.Repeat("a", 65), "a b", "a/b"} {
		if _, err := s.Add(bad, ScopeRead, 0); err == nil {
			t.Errorf("add %q: accepted", bad)
		}
	}
	recs, err := s.List()
	if err != nil || len(recs) != 1 || recs[0].Name != "alice" || recs[0].MaxKernels != 3 || recs[0].Scopes != ScopeRead|ScopeExecute {
		t.Fatalf("list: %+v %v", recs, err)
	}
	tok2, err := s.Rotate("alice")
	if err != nil || tok2 == tok {
		t.Fatalf("rotate: %q %v", tok2, err)
	}
	if err := s.Revoke("alice"); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke("alice"); err == nil || !strings.Contains(err.Error(), "revoked already") {
		t.Errorf("second revoke: %v", err)
	}
	if _, err := s.Add("alice", ScopeRead, 0); !errors.Is(err, ErrPrincipalExists) || !strings.Contains(err.Error(), "was revoked") {
		t.Errorf("add over a revoked name: %v", err)
	}
	if err := s.Revoke("bob"); !errors.Is(err, ErrUnknownPrincipal) || !strings.Contains(err.Error(), "principal list") {
		t.Errorf("revoke unknown: %v", err)
	}
	if _, err := s.Rotate("bob"); !errors.Is(err, ErrUnknownPrincipal) {
		t.Errorf("rotate unknown: %v", err)
	}
}

// TestStoreConcurrentAdds: CLI runs at once lose none of their changes
// (the flock), and the file is always whole for a reader (the rename).
func TestStoreConcurrentAdds(t *testing.T) {
	dir := t.TempDir()
	s := Store{Dir: dir}
	const n = 20
	var wg sync.WaitGroup
	errs := make(chan error, n)
	stop := make(chan struct{})
	readerDone := make(chan error, 1)
	go func() {
		for {
			select {
			case <-stop:
				readerDone <- nil
				return
			default:
			}
			if _, err := readPrincipalsFile(filepath.Join(dir, PrincipalsFile)); err != nil {
				readerDone <- err
				return
			}
		}
	}()
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Add("p"+strings.Repeat("x", i), ScopeRead, 0)
			errs <- err
		}()
	}
	wg.Wait()
	close(stop)
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	if err := <-readerDone; err != nil {
		t.Errorf("a reader saw a partial file: %v", err)
	}
	recs, err := s.List()
	if err != nil || len(recs) != n {
		t.Fatalf("%d principals after %d concurrent adds (%v)", len(recs), n, err)
	}
}

// TestDirectoryReloadsAndWatches: a running directory notices add, rotate
// and revoke at once (inotify), tells its watchers whose token died, and
// keeps its table when the file turns unreadable.
func TestDirectoryReloadsAndWatches(t *testing.T) {
	dir := t.TempDir()
	s := Store{Dir: dir}
	const admin = "the-admin-token-0123456789"
	// NB: a poll period far beyond the test, so only inotify can pass it.
	d, err := OpenTokenDirectory(DirectoryOptions{DataDir: dir, AdminToken: admin, PollEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	dead := make(chan string, 10)
	stopWatch := d.Watch(func(name string) { dead <- name })
	defer stopWatch()

	if p, err := d.Authenticate(bearerRequest(admin)); err != nil || p != Admin() {
		t.Fatalf("admin token: %+v %v", p, err)
	}
	tok, err := s.Add("alice", ScopeRead, 2)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	waitAuth := func(tok string, wantOK bool) {
		t.Helper()
		for {
			_, err := d.Authenticate(bearerRequest(tok))
			if (err == nil) == wantOK {
				return
			}
			select {
			case <-ctx.Done():
				t.Fatalf("token %q: still %v", tok, err)
			case <-time.After(5 * time.Millisecond):
			}
		}
	}
	waitAuth(tok, true)
	p, _ := d.Authenticate(bearerRequest(tok))
	if p.Name != "alice" || p.Scopes != ScopeRead || p.MaxKernels != 2 {
		t.Errorf("alice is %+v", p)
	}
	tok2, err := s.Rotate("alice")
	if err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-dead:
		if name != "alice" {
			t.Errorf("watch heard %q", name)
		}
	case <-ctx.Done():
		t.Fatal("rotate: no watch call")
	}
	if _, err := d.Authenticate(bearerRequest(tok)); !errors.Is(err, ErrRejected) {
		t.Errorf("old token after rotate: %v", err)
	}
	waitAuth(tok2, true)

	// An unreadable file fails closed: it may hold a revocation the server
	// cannot read, so no principal token works until it is fixed, and the
	// watchers hear who stopped; the admin token still works.
	good, err := os.ReadFile(filepath.Join(dir, PrincipalsFile))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, PrincipalsFile), []byte("{broken"), 0o600); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-dead:
		if name != "alice" {
			t.Errorf("watch heard %q", name)
		}
	case <-ctx.Done():
		t.Fatal("a broken file: no watch call")
	}
	if _, err := d.Authenticate(bearerRequest(tok2)); !errors.Is(err, ErrRejected) {
		t.Errorf("a broken file left alice's token working: %v", err)
	}
	if _, err := d.Authenticate(bearerRequest(admin)); err != nil {
		t.Errorf("admin token with a broken principals file: %v", err)
	}
	if err := d.Reload(); err == nil || !strings.Contains(err.Error(), "every principal token is refused") {
		t.Errorf("Reload of a broken file: %v", err)
	}
	// Fixed again: alice is back. Then the file removed: alice stops.
	if err := atomicfile.Write(filepath.Join(dir, PrincipalsFile), good); err != nil {
		t.Fatal(err)
	}
	waitAuth(tok2, true)
	if err := os.Remove(filepath.Join(dir, PrincipalsFile)); err != nil {
		t.Fatal(err)
	}
	select {
	case name := <-dead:
		if name != "alice" {
			t.Errorf("watch heard %q", name)
		}
	case <-ctx.Done():
		t.Fatal("removing the file: no watch call")
	}
	waitAuth(tok2, false)
	if _, err := d.Authenticate(bearerRequest(admin)); err != nil {
		t.Errorf("admin token without a principals file: %v", err)
	}
}

func TestDirectoryLeavesJWTsToTheNext(t *testing.T) {
	d, err := OpenTokenDirectory(DirectoryOptions{DataDir: t.TempDir(), AdminToken: "admin-token-0123456789"})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	jwt := "eyJhbGciOiJSUzI1NiJ9.eyJzdWIiOiJ4In0.c2ln"
	if _, err := d.Authenticate(bearerRequest(jwt)); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("a JWT: %v, want ErrNoCredentials (for the next authenticator)", err)
	}
	next := authFunc(func(r *http.Request) (Principal, error) {
		return Principal{Name: "oidc:x", Scopes: ScopeRead}, nil
	})
	if p, err := (Chain{d, next}).Authenticate(bearerRequest(jwt)); err != nil || p.Name != "oidc:x" {
		t.Errorf("chain: %+v %v", p, err)
	}
	if _, err := (Chain{d}).Authenticate(bearerRequest(jwt)); !errors.Is(err, ErrRejected) {
		t.Errorf("a JWT with no OAuth authenticator: %v, want ErrRejected", err)
	}
	if _, err := (Chain{d, next}).Authenticate(bearerRequest("wrong")); !errors.Is(err, ErrRejected) {
		t.Errorf("a wrong opaque token went past the directory: %v", err)
	}
	if _, err := (Chain{d}).Authenticate(bearerRequest("")); !errors.Is(err, ErrNoCredentials) {
		t.Errorf("no token: %v, want ErrNoCredentials", err)
	}
}

type authFunc func(r *http.Request) (Principal, error)

func (f authFunc) Authenticate(r *http.Request) (Principal, error) { return f(r) }

// TestWatcherMayStopItself: a watcher that stops itself from its callback
// (a /ws stream closing) neither deadlocks the directory nor hears again.
func TestWatcherMayStopItself(t *testing.T) {
	dir := t.TempDir()
	s := Store{Dir: dir}
	for _, n := range []string{"a", "b"} {
		if _, err := s.Add(n, ScopeRead, 0); err != nil {
			t.Fatal(err)
		}
	}
	d, err := OpenTokenDirectory(DirectoryOptions{DataDir: dir, PollEvery: time.Hour})
	if err != nil {
		t.Fatal(err)
	}
	defer d.Close()
	heard := make(chan string, 10)
	var stop func()
	stop = d.Watch(func(name string) { heard <- name; stop() })
	others := make(chan string, 10)
	defer d.Watch(func(name string) { others <- name })()
	if err := s.Revoke("a"); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	if err := s.Revoke("b"); err != nil {
		t.Fatal(err)
	}
	if err := d.Reload(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	for _, want := range []string{"a", "b"} {
		select {
		case got := <-others:
			if got != want {
				t.Fatalf("the other watcher heard %q, want %q", got, want)
			}
		case <-ctx.Done():
			t.Fatalf("the other watcher did not hear %q", want)
		}
	}
	if got := len(heard); got != 1 {
		t.Errorf("the self-stopping watcher heard %d names, want 1", got)
	}
}
