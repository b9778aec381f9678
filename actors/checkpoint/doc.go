// Package checkpoint saves a kernel's variables to a signed file, verifies
// it, and restores it into a kernel — the same one, or a fresh one after the
// server and the kernel were lost (the Friday→Monday gap).
//
// It is a protoactor actor, the single writer of the checkpoint streams
// (checkpoint/<name>: CheckpointSaved, CheckpointLoaded, CheckpointRejected,
// CheckpointDeleted). Callers talk to it through Client. State is its own
// fold of those streams; Decide validates a command against it; actor.go
// runs the work — which waits seconds to minutes on a kernel — in goroutines
// it owns, and records the outcome when they report back. Commands on one
// name are serialized (a second one gets ErrBusy); different names run in
// parallel. The file format, signatures, encryption and file I/O live in
// infra/checkpointfile, behind Files.
//
// Contract:
//
//  0. No kernel is given a path under checkpoints/. Each save and load
//     hands the kernel an open descriptor over a unix socket bound in the
//     kernel's own directory (Config.KernelDir), with a one-time nonce
//     (handout.go); the socket is gone when the call ends.
//  1. Save has the kernel dill-serialize its variables one by one into the
//     pipe Files gives it (one pickler, so aliased objects stay
//     aliased; a variable that fails is cut off and reported, the rest are
//     kept). Modules, open files, sockets, generators and IPython's history
//     are left out with a reason. Package versions come from the kernel's
//     own environment (importlib.metadata), not the server's.
//  2. Files tags each 1 MiB chunk as it arrives from the pipe (and, when
//     the store encrypts, seals it with AES-256-GCM) while the kernel is
//     still pickling — never whole in memory — then adds the tags, the
//     signed metadata and footer, fsyncs, renames it to <name>.ckpt and
//     fsyncs the directory. The rename is the commit point: a crash before it
//     leaves only a temp file and the previous checkpoint of that name intact.
//     The actor then records CheckpointSaved.
//  3. Load has Files open the file once (regular files only) and check
//     the HMAC over its header, chunk tags and metadata; CheckFile then
//     compares the signed name with the request (a copy under another
//     name: ErrRenamed) and the signed version with the newest save the
//     log recorded (an older copy put back: ErrRollback, unless
//     LoadRequest.AllowRollback). Only then does the kernel get a pipe,
//     into which Files writes each chunk once it has read and checked it:
//     a chunk that fails is never written, the kernel's unpickler stops
//     short, and its globals are untouched. A refusal (flipped byte,
//     truncation, reordered or foreign chunk, unknown or rotated-away key,
//     newer format, not a regular file, renamed, older) is a RejectError
//     (errors.Is ErrRejected), a CheckpointRejected event and one more
//     Stats.SignatureFailures. (Format 1 files are verified whole into a
//     private copy first, as before.)
//  4. The kernel compares the recorded package versions with its own, in
//     the same execution as the restore; Policy warn restores and reports,
//     refuse restores nothing (the kernel stops before taking the pipe),
//     install runs pip in the kernel's environment and reports each
//     result, then restores. The kernel loads every variable and updates
//     its globals only when all of them loaded.
//  5. A load with LoadRequest.Restore is the server's restore of a kernel
//     relaunched at start (cmd/mcp-jupyter restore.go): all of its work in
//     the kernel runs through RestoreRunner.RunRestore, ahead of the
//     kernel's held queue. A Runner that is not a RestoreRunner refuses it
//     (ErrNoRestoreRunner) before anything reaches the kernel.
//  6. The Observer is told every save's and load's wall time (and a saved
//     file's size): infra/metrics turns them into the
//     checkpoint_save_duration_seconds, checkpoint_load_duration_seconds and
//     checkpoint_size_bytes histograms. A refused file is a load attempt.
//  7. With a Replica (cluster mode: the cluster's object store), a save
//     is answered only after its committed file was put there (the name
//     still busy, so saves of one name arrive in order); a failed put
//     fails nothing and says why in Meta.NotReplicated. A delete removes
//     the copy first and deletes nothing when it cannot. Adopt takes in a
//     file from elsewhere, verified in full as a load verifies it (a
//     refusal is a RejectError and a CheckpointRejected event), and records
//     CheckpointSaved for it on this node. Without a Replica nothing of
//     this runs.
//
// Recovery: on every start the actor folds its own streams
// (Log.ReadStreams("checkpoint/", 0): a few events per name, never the rest
// of the log), then scans the files off the mailbox: a committed file the
// log does not record (a crash between the rename and the append) is
// verified and recorded (unless it is saved under another name or older
// than the name's newest recorded save), a recorded name whose file is
// gone is recorded deleted. A crashed incarnation hands the report it was recording to the
// next one, which records it once (its scan then sees it recorded).
//
// Usage:
//
//	keys, _ := checkpointfile.OpenKeyring(dataDir+"/checkpoint-keys", os.Getenv(checkpointfile.SecretEnv))
//	files, _ := checkpointfile.Open(dataDir+"/checkpoints", keys, encrypt)
//	c, _ := checkpoint.Open(ctx, checkpoint.Config{System: sys.Actors(), Files: files, Runner: runner, Log: log,
//		KernelDir: func(id string) string { return filepath.Join(dataDir, "runtime", "kernels", id) }, Observer: obs})
//	meta, err := c.Save(ctx, checkpoint.SaveRequest{Name: "friday", KernelID: k})
//	res, err := c.Load(ctx, checkpoint.LoadRequest{Name: "friday", KernelID: k2})
package checkpoint
