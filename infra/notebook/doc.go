// Package notebook reads and writes Jupyter notebooks (.ipynb, nbformat 4.5)
// the way Jupyter does, so that a person who opens a file an agent changed in
// JupyterLab or VS Code sees ordinary Jupyter output.
//
// What it guarantees:
//
//  1. Parse accepts nbformat 4 (any minor) and returns a Notebook whose cells
//     all carry nbformat 4.5 ids (ids are assigned to older files, as
//     nbformat's upgrade does). A file that is not JSON, not a notebook or
//     not nbformat 4 is refused with a *FormatError saying what to do.
//  2. Marshal writes what nbformat.write writes: sorted keys, one-space
//     indent, sources and text outputs split into lines, a final newline.
//     Metadata and outputs it did not touch are kept byte-for-byte in
//     meaning (unknown keys included).
//  3. Outputs turns an execution's IOPub messages into nbformat outputs:
//     stream (consecutive chunks of one name merged), display_data and
//     execute_result with their MIME bundles, error, and clear_output
//     honoured (wait=true clears when the next output arrives).
//  4. Files are written atomically: Prepare writes a temp file beside the
//     notebook and fsyncs it; Commit renames it over the notebook and fsyncs
//     the directory; Abort removes it. A crash at any point leaves either
//     the old or the new bytes, never a mix.
//  5. Root confines paths to one directory tree: "..", absolute paths
//     elsewhere and symlinks that lead out are refused.
//  6. Lock is an advisory flock on a sidecar file (.<name>.lock beside the
//     notebook) held for the length of one read-check-write, so two writers —
//     two servers, or two processes — never interleave.
//  7. For the Jupyter contents API: ResolveEntry confines any entry (files,
//     directories, the root itself) the same way and refuses hidden names
//     (also where a symlink leads), keeping a link's own path;
//     JupyterJSON shows a file as nbformat.reads does (lines joined);
//     StripTransient drops what frontends add on read (cells' trusted);
//     checkpoint.go keeps copies in jupyter_server's .ipynb_checkpoints
//     layout; ReadBytes, RenameNoReplace and Remove work on whole files.
//
// Callers' duties: resolve every path through Root, hold Lock from the read
// that checks the caller's expected hash until Commit, and compare hashes
// (Hash, the sha256 of the file bytes) rather than parsed contents.
//
//	root, _ := notebook.NewRoot(dir)
//	abs, rel, _ := root.Resolve("analysis.ipynb")
//	unlock, _ := notebook.Lock(abs)
//	defer unlock()
//	f, _ := notebook.ReadFile(abs)          // f.Hash, f.Notebook
//	nb := f.Notebook.Clone()
//	_, _ = nb.Insert(0, notebook.Cell{Type: "code", Source: "1+1"})
//	b, _ := nb.Marshal()
//	p, _ := notebook.Prepare(abs, b)
//	_ = p.Commit()
package notebook
