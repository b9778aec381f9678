// Package checkpoint saves a kernel's variables to a signed file, verifies
// it, and restores it into a kernel — the same one, or a fresh one after the
// server and the kernel were lost (the Friday→Monday gap).
//
// Contract:
//
//  1. Save has the kernel dill-serialize its variables one by one into a
//     temp file under <dir>/tmp (one pickler, so aliased objects stay
//     aliased; a variable that fails is cut off and reported, the rest are
//     kept). Modules, open files, sockets, generators and IPython's history
//     are left out with a reason. Package versions come from the kernel's
//     own environment (importlib.metadata), not the server's.
//  2. The server then streams the file through HMAC-SHA256 (and, with
//     Options.Encrypt, AES-256-GCM in 1 MiB chunks) — never whole in
//     memory — adds the signed metadata and footer, fsyncs, renames it to
//     <name>.ckpt and fsyncs the directory. The rename is the commit point:
//     a crash before it leaves only a temp file (removed at the next Open)
//     and the previous checkpoint of that name intact.
//  3. Load verifies the whole file, streamed, with a constant-time compare,
//     while copying the payload to a 0600 temp file. Only when the
//     signature holds is the kernel told to read it. A refusal (flipped
//     byte, truncation, unknown or rotated-away key, newer format) is a
//     RejectError (errors.Is ErrRejected), a CheckpointRejected event and
//     one more SignatureFailures; the kernel runs nothing.
//  4. The kernel compares the recorded package versions with its own;
//     Policy warn restores and reports, refuse restores nothing, install
//     runs pip in the kernel's environment and reports each result. The
//     kernel then loads every variable and updates its globals only when
//     all of them loaded.
//
// Keys live in a Keyring (its own 0700 directory, never under Dir): the
// current key signs, every key kept verifies, and each file names its key.
//
// Usage:
//
//	keys, _ := checkpoint.OpenKeyring(dataDir+"/checkpoint-keys", os.Getenv(checkpoint.SecretEnv))
//	svc, _ := checkpoint.Open(ctx, checkpoint.Options{Dir: dataDir + "/checkpoints", Keys: keys,
//		Runner: checkpoint.SystemRunner{System: sys, Queue: q, Log: log}, Log: log, Scanner: log})
//	meta, err := svc.Save(ctx, checkpoint.SaveRequest{Name: "friday", KernelID: k})
//	res, err := svc.Load(ctx, checkpoint.LoadRequest{Name: "friday", KernelID: k2})
package checkpoint
