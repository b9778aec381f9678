// Package assetstore keeps the bytes of rich and large kernel outputs as
// write-once, content-addressed files: <dir>/<sha256>.
//
// The store knows nothing of leases or MIME types: those live in the event
// log (AssetStored, LeaseGranted, ...) and are decided by actors/lease, which
// is the only writer and the only deleter of these files.
//
// # Contract
//
//  1. Names are sha256 digests in lowercase hex (ValidSum). Any other name is
//     refused with *BadSumError before the file system is touched, so no
//     caller-supplied string ever becomes a path (no traversal).
//  2. Put writes to a temporary file, fsyncs it, renames it into place and
//     fsyncs the directory: after Put returns the bytes survive a crash.
//     Putting bytes already present is a no-op (write once).
//  3. Open verifies nothing on read (the file was verified when written);
//     Delete removes the file without an fsync (the caller's log makes the
//     deletion durable and redoes it). Deleting a missing file is not an error.
//  4. Temporary files left by a crash are removed by Open.
//
// Usage:
//
//	st, err := assetstore.Open(filepath.Join(dataDir, "assets"))
//	sum, created, err := st.Put(data)
//	f, size, err := st.Open(sum)
//	err = st.Delete(sum)
package assetstore
