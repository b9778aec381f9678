package checkpoint

import (
	"context"
	"os"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/events"
)

// Files is the directory of checkpoint files: format, signature,
// encryption and file I/O (infra/checkpointfile.Store implements it). Its
// methods block on disk and are called off the actor's mailbox, never two
// at once on one name. No kernel is ever given a path: the actor hands the
// files below to the kernel as open descriptors (handout.go).
//
//   - Exists reports whether anything is committed under name's file name
//     (the rename is the commit point of a save, so the directory, not only
//     the log, decides existence); it opens nothing.
//   - Save stages a save, runs dump with the write end of a pipe the kernel
//     writes its framed dill stream to (kernel.py _Sink), tags (and
//     encrypts) each chunk as it arrives, adds the metadata meta returns and
//     commits it atomically. On error nothing is committed. The file being
//     written never passes maxBytes (≤ 0: no bound; the owner's quota left)
//     nor the free disk above the server's reserve: the save fails there,
//     and the kernel's next write into the pipe fails at once.
//   - Load opens the file once (regular files only, no-follow, non-blocking),
//     checks what it must before restore runs (format 2: header, chunk
//     tags and metadata; format 1: all of it, into a private copy), and
//     runs restore with a read-only descriptor of the payload (format 2: a
//     pipe that carries each chunk once it is checked), the signed
//     metadata and the file's size. A refused file is an error with a
//     method Rejected() bool that returns true — also when a chunk fails
//     after restore began: Load returns that refusal whatever restore
//     returned — and a missing one wraps fs.ErrNotExist.
//   - Verify checks a file as Load does, keeping nothing; it returns the
//     signed metadata and the file's size.
//   - List calls fn for each entry named like a checkpoint whose name valid
//     accepts, with its signed (not verified) metadata; an entry that is not
//     a regular file is reported, unopened, with an error whose method
//     NotRegular() bool returns true.
//   - Delete removes name's files durably.
//   - Import takes in a file made elsewhere (another node): fetch writes it
//     to a new path dst; Import verifies it in full as Load does, gives its
//     signed metadata and size to check, and only when both accept commits
//     it as name's file. A refusal is an error with Rejected() true; name's
//     previous file is then untouched.
type Files interface {
	Exists(name string) bool
	Save(name string, maxBytes int64, dump func(stage *os.File) error,
		meta func(keyID string, encrypted bool, payloadBytes int64, sha256 string) ([]byte, error)) (int64, error)
	Load(name string, restore func(payload *os.File, meta []byte, size int64) error) error
	Verify(name string) (meta []byte, size int64, err error)
	List(valid func(name string) bool, fn func(name string, meta []byte, size int64, err error)) error
	Delete(name string) error
	Import(name string, fetch func(dst string) error, check func(meta []byte, size int64) error) (meta []byte, size int64, err error)
}

// Log is what the actor needs from the event log (infra/eventlog
// implements it). Append returns when the events are durable; ReadStreams
// visits the events of every stream starting with prefix, seq > after, in
// order.
type Log interface {
	Append(ctx context.Context, drafts ...events.Draft) ([]events.Event, error)
	ReadStreams(ctx context.Context, prefix string, after uint64, fn func(events.Event) error) error
}

// Observer is told the figures of the work (infra/metrics feeds its
// histograms from it). Calls come from the actor's mailbox, one at a time;
// they must not block.
//
//   - SaveObserved: every save that was started (past name and existence
//     checks), with its wall time; size is the file's size, 0 when the save
//     failed.
//   - LoadObserved: every load that was started, with its wall time and
//     outcome: "ok", "rejected" (the file failed verification: tampered,
//     truncated, unknown key), "refused" (package policy) or "failed".
type Observer interface {
	SaveObserved(d time.Duration, size int64)
	LoadObserved(d time.Duration, outcome string)
}

// Load outcomes given to the Observer.
const (
	OutcomeOK       = "ok"
	OutcomeRejected = "rejected"
	OutcomeRefused  = "refused"
	OutcomeFailed   = "failed"
)

type nopObserver struct{}

func (nopObserver) SaveObserved(time.Duration, int64)  {}
func (nopObserver) LoadObserved(time.Duration, string) {}
