package auth

import (
	"crypto/subtle"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Directory authenticates requests and tells its watchers when a
// principal's token stops working, so that an edge holding a connection
// open for it (a /ws stream) can close it.
type Directory interface {
	Authenticator
	// Watch calls fn with a principal's name each time it is revoked or
	// rotated (its old token dead). fn runs on the directory's goroutine:
	// it must not block. stop ends the calls (fn may call it).
	Watch(fn func(name string)) (stop func())
}

// BearerToken returns the token of r's "Authorization: Bearer …" header.
func BearerToken(r *http.Request) (string, bool) {
	const prefix = "bearer "
	h := r.Header.Get("Authorization")
	if len(h) < len(prefix) || !strings.EqualFold(h[:len(prefix)], prefix) {
		return "", false
	}
	tok := strings.TrimSpace(h[len(prefix):])
	return tok, tok != ""
}

// Chain tries its authenticators in order: the first that accepts the
// request's credentials decides; one that returns ErrNoCredentials (none of
// its kind) passes the request on; any other error ends the chain. When
// none accepts, a request with a bearer token gets ErrRejected (the token
// is wrong), one without ErrNoCredentials.
type Chain []Authenticator

// Authenticate implements Authenticator.
func (c Chain) Authenticate(r *http.Request) (Principal, error) {
	for _, a := range c {
		if a == nil {
			continue
		}
		p, err := a.Authenticate(r)
		if err == nil {
			return p, nil
		}
		if !errors.Is(err, ErrNoCredentials) {
			return Principal{}, err
		}
	}
	if _, ok := BearerToken(r); ok {
		return Principal{}, fmt.Errorf("%w: the bearer token is wrong", ErrRejected)
	}
	return Principal{}, ErrNoCredentials
}

// Watch calls fn for every revoked or rotated principal of each member
// that is a Directory: a Chain is a Directory too.
func (c Chain) Watch(fn func(name string)) (stop func()) {
	var stops []func()
	for _, a := range c {
		if d, ok := a.(Directory); ok {
			stops = append(stops, d.Watch(fn))
		}
	}
	return func() {
		for _, s := range stops {
			s()
		}
	}
}

// AdminToken authenticates one fixed token as Admin(): the data dir's
// token alone, where no principals file is read (tests, tools).
func AdminToken(token string) Authenticator {
	return adminToken{hash: HashToken(token), set: token != ""}
}

type adminToken struct {
	hash TokenHash
	set  bool
}

func (a adminToken) Authenticate(r *http.Request) (Principal, error) {
	tok, ok := BearerToken(r)
	if !ok {
		return Principal{}, ErrNoCredentials
	}
	if a.set && matchesHash(HashToken(tok), a.hash) {
		return Admin(), nil
	}
	return Principal{}, fmt.Errorf("%w: the bearer token is wrong", ErrRejected)
}

// matchesHash compares two hashes in constant time. NB: comparing hashes,
// not tokens, also hides the configured token's length.
func matchesHash(a, b TokenHash) bool { return subtle.ConstantTimeCompare(a[:], b[:]) == 1 }

// TokenDirectory is the Directory of one data dir: its token (mcp-token or
// --token) authenticates as Admin(), and the tokens of the principals file
// as their principals. It notices a change of the file at once (inotify on
// the data dir, and a re-stat every PollEvery in case inotify is not
// available or misses one) and reloads it; a file it cannot read or parse
// leaves the table it had, and the reason is logged.
type TokenDirectory struct {
	path    string
	admin   TokenHash
	isAdmin bool
	log     *slog.Logger

	table atomic.Pointer[tokenTable]

	mu    sync.Mutex // serialises reloads; guards stamp
	stamp fileStamp

	// notifyMu keeps the watchers' calls of one reload together and in
	// reload order; wmu guards the watcher set and is never held during a
	// call, so a watcher may call its own stop.
	notifyMu sync.Mutex
	wmu      sync.Mutex
	watchers map[int]*watcher
	nextID   int

	closeOnce sync.Once
	stop      chan struct{}
	done      chan struct{}
	inotify   *os.File // nil when inotify was unavailable
}

// tokenTable is one load of the principals file. NB: a map keyed by the
// token's hash: a check costs one hash and one lookup, whatever the number
// of principals, and never walks the table.
type tokenTable struct {
	byHash map[TokenHash]Principal
	byName map[string]TokenHash // active principals only
}

// fileStamp is what the re-stat compares to decide the file changed.
type fileStamp struct {
	exists     bool
	ino, size  uint64
	mtime, ctm int64
}

// DirectoryOptions configure OpenTokenDirectory.
type DirectoryOptions struct {
	// DataDir holds the principals file.
	DataDir string
	// AdminToken authenticates as Admin(); empty: no admin token.
	AdminToken string
	// Logger receives reloads and reload failures; nil discards.
	Logger *slog.Logger
	// PollEvery is the re-stat period; zero is DefaultPollEvery.
	PollEvery time.Duration
}

// DefaultPollEvery is how often the principals file is re-stat'ed besides
// inotify: the longest a change could go unnoticed if inotify missed it.
const DefaultPollEvery = 2 * time.Second

// OpenTokenDirectory loads the principals file of opts.DataDir (none is no
// principals) and starts watching it. A file that cannot be parsed is an
// error: the server does not start with a table it cannot read. Close
// stops the watching.
func OpenTokenDirectory(opts DirectoryOptions) (*TokenDirectory, error) {
	d := &TokenDirectory{path: filepath.Join(opts.DataDir, PrincipalsFile), log: opts.Logger,
		watchers: map[int]*watcher{}, stop: make(chan struct{}), done: make(chan struct{})}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if opts.AdminToken != "" {
		d.admin, d.isAdmin = HashToken(opts.AdminToken), true
	}
	if opts.PollEvery <= 0 {
		opts.PollEvery = DefaultPollEvery
	}
	// NB: the watch starts before the first load, so a change between the
	// two is not missed.
	ino, err := watchDir(opts.DataDir)
	if err != nil {
		d.log.Warn("principals: no inotify on the data dir; changes to the principals file are noticed by re-reading it every "+opts.PollEvery.String(),
			"path", d.path, "err", err)
	}
	d.inotify = ino
	if err := d.Reload(); err != nil {
		if ino != nil {
			ino.Close()
		}
		return nil, err
	}
	go d.run(opts.PollEvery)
	return d, nil
}

// Close stops the watching. Idempotent.
func (d *TokenDirectory) Close() error {
	d.closeOnce.Do(func() {
		close(d.stop)
		if d.inotify != nil {
			d.inotify.Close() // NB: ends the read in run
		}
		<-d.done
	})
	return nil
}

// Authenticate implements Authenticator.
func (d *TokenDirectory) Authenticate(r *http.Request) (Principal, error) {
	tok, ok := BearerToken(r)
	if !ok {
		return Principal{}, ErrNoCredentials
	}
	return d.lookup(tok)
}

func (d *TokenDirectory) lookup(tok string) (Principal, error) {
	h := HashToken(tok)
	if d.isAdmin && matchesHash(h, d.admin) {
		return Admin(), nil
	}
	if p, ok := d.table.Load().byHash[h]; ok {
		return p, nil
	}
	if LooksLikeJWT(tok) {
		// NB: not ours to refuse: an OAuth authenticator after us in a
		// Chain decides (and the Chain refuses it if there is none).
		return Principal{}, fmt.Errorf("%w: a JWT, not a token of the principals file", ErrNoCredentials)
	}
	return Principal{}, fmt.Errorf("%w: the bearer token is wrong, revoked or rotated", ErrRejected)
}

// watcher is one Watch registration.
type watcher struct {
	fn      func(string)
	stopped atomic.Bool
}

// Watch implements Directory. fn runs on the directory's goroutine, once
// per principal whose token died, in the order of the changes; it must not
// block. It may call stop; after stop returns, no new call starts.
func (d *TokenDirectory) Watch(fn func(name string)) (stop func()) {
	w := &watcher{fn: fn}
	d.wmu.Lock()
	id := d.nextID
	d.nextID++
	d.watchers[id] = w
	d.wmu.Unlock()
	return func() {
		w.stopped.Store(true)
		d.wmu.Lock()
		delete(d.watchers, id)
		d.wmu.Unlock()
	}
}

// Reload reads the principals file now. On error the table stays as it
// was. The watchers hear of each principal whose token stopped working.
func (d *TokenDirectory) Reload() error {
	d.mu.Lock()
	// NB: the stamp taken before the read is kept even when the read
	// fails: a good file landing after this stat has another stamp, so the
	// next poll loads it.
	d.stamp = statFile(d.path)
	recs, err := readPrincipalsFile(d.path)
	if err != nil {
		// Fail closed: a file the server cannot read may hold a
		// revocation (written by another user, hand-edited wrong), so no
		// principal token works until it is fixed; the admin token does.
		recs = nil
		err = fmt.Errorf("%w; every principal token is refused until the file is fixed (the admin token still works)", err)
	}
	next := &tokenTable{byHash: make(map[TokenHash]Principal, len(recs)), byName: make(map[string]TokenHash, len(recs))}
	for _, r := range recs {
		if r.Active() {
			next.byHash[r.Hash] = r.Principal()
			next.byName[r.Name] = r.Hash
		}
	}
	var dead []string
	if prev := d.table.Load(); prev != nil {
		for name, h := range prev.byName {
			if nh, ok := next.byName[name]; !ok || nh != h {
				dead = append(dead, name)
			}
		}
	}
	d.table.Store(next)
	// NB: notifyMu taken before mu is let go: the next reload's calls come
	// after these.
	d.notifyMu.Lock()
	d.mu.Unlock()
	defer d.notifyMu.Unlock()
	if len(dead) == 0 {
		return err
	}
	d.wmu.Lock()
	ws := make([]*watcher, 0, len(d.watchers))
	for _, w := range d.watchers {
		ws = append(ws, w)
	}
	d.wmu.Unlock()
	for _, name := range dead {
		d.log.Info("principals: token stopped working (revoked or rotated)", "principal", name)
		for _, w := range ws {
			if !w.stopped.Load() {
				w.fn(name)
			}
		}
	}
	return err
}

// reloadIfChanged reloads when the file's stamp differs from the last load.
func (d *TokenDirectory) reloadIfChanged(force bool) {
	d.mu.Lock()
	same := d.stamp == statFile(d.path)
	d.mu.Unlock()
	if same && !force {
		return
	}
	if err := d.Reload(); err != nil {
		d.log.Error("principals: cannot reload the principals file", "path", d.path, "err", err)
	}
}

// run is the watching goroutine: inotify events on the data dir (when
// available) and the periodic re-stat, until Close.
func (d *TokenDirectory) run(every time.Duration) {
	defer close(d.done)
	changed := make(chan struct{}, 1)
	var readerDone chan struct{}
	if d.inotify != nil {
		readerDone = make(chan struct{})
		go func() {
			defer close(readerDone)
			readInotify(d.inotify, PrincipalsFile, changed, d.log)
		}()
	}
	tick := time.NewTicker(every)
	defer tick.Stop()
	for {
		select {
		case <-d.stop:
			if readerDone != nil {
				<-readerDone
			}
			return
		case <-changed:
			d.reloadIfChanged(true)
		case <-tick.C:
			d.reloadIfChanged(false)
		}
	}
}

func statFile(path string) fileStamp {
	fi, err := os.Stat(path)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			// An unreadable stat differs from any real one: reload and log.
			return fileStamp{exists: true, ino: ^uint64(0)}
		}
		return fileStamp{}
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	s := fileStamp{exists: true, size: uint64(fi.Size()), mtime: fi.ModTime().UnixNano()}
	if st != nil {
		s.ino, s.ctm = st.Ino, st.Ctim.Nano()
	}
	return s
}
