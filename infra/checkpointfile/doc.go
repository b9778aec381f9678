// Package checkpointfile is the checkpoint file on disk: its format
// (format.go), its signature and encryption streams, the keyring that holds
// the secrets (keyring.go), and the directory of checkpoints (store.go).
// actors/checkpoint declares what it needs (checkpoint.Files) and Store
// implements it; nothing here knows about kernels, events or actors.
//
// Duties of the caller:
//
//  1. Open the Keyring in its own 0700 directory, never under the
//     checkpoints directory the kernels read and write.
//  2. Open the Store on the checkpoints directory (it removes temp files a
//     crash left behind).
//  3. Serialize commands on one name (the checkpoint actor does); different
//     names may run at once.
//
// A file is refused with a *RejectError (errors.Is ErrRejected; method
// Rejected) before any of its unchecked bytes may reach a kernel: bad
// magic, newer format, unknown flags, truncation, unknown key, a signature
// mismatch, a chunk that fails its tag; something that is not a regular
// file with a *NotRegularError (never opened for reading: files are opened
// with O_NOFOLLOW|O_NONBLOCK and fstat decides).
//
// Saves write format 2 (chunked.go): the kernel streams its dill output
// into a pipe, framed, and the stage tags each 1 MiB chunk as it arrives
// and writes it, so hashing overlaps pickling and the file is written
// once. Loads of format 2 check the HMAC over header, tags and metadata,
// then stream each chunk, checked against its tag after it was read, into
// a pipe the kernel reads: one read of the file, nothing unchecked handed
// out. Format 1 files still load: verified whole, through one descriptor,
// into a private unlinked copy that the kernel then reads.
//
// Usage:
//
//	keys, err := checkpointfile.OpenKeyring(dataDir+"/checkpoint-keys", os.Getenv(checkpointfile.SecretEnv))
//	st, err := checkpointfile.Open(dataDir+"/checkpoints", keys, false)
//	size, err := st.Save("friday", 0, func(pipe *os.File) error { ... hand pipe to the kernel ... }, metaJSON)
//	err = st.Load("friday", func(payload *os.File, meta []byte, size int64) error { ... hand payload to the kernel ... })
package checkpointfile
