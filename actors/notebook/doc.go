// Package notebook is the notebook actor: one per notebook file, so that
// every change to one .ipynb — an agent's edit, another agent's edit, the
// outputs of a run — happens one at a time, never interleaved, and each is an
// event in the log (NotebookCreated, NotebookCellInserted, ...) naming who
// made it and the file's sha256 before and after.
//
// The file on disk is the truth for the notebook's contents: people edit it
// too, in JupyterLab or VS Code, without telling us. So every command is
// decided against the file as read under its writer lock:
//
//  1. The shell (actor.go) takes the file's lock (infra/notebook.Lock;
//     another writer holding it is refused with ErrLocked), reads the file
//     and its hash.
//  2. Decide (decide.go, pure) refuses an edit whose ExpectedHash is not the
//     file's hash — unless every version in between was made by this server
//     writing outputs (State keeps that chain), which changes no cell a
//     person or agent wrote — and otherwise returns the new bytes, their
//     hash and the events.
//  3. The shell writes the new bytes beside the file and fsyncs them,
//     checks the file did not change since step 1, appends the events
//     (durable), and only then renames the new file into place. If the
//     append fails the temp file is removed: the notebook is untouched and
//     the caller hears the error.
//  4. Apply (state.go, pure) folds the events; on start the actor recovers
//     its State from its stream, so the chain of versions replays.
//
// A crash between the append and the rename leaves the old file with an
// event naming a hash the file never had: the next edit's hash check
// notices (the agent re-reads), nothing is half-written.
//
// Whole-file ops serve the Jupyter contents API (frontends' saves): Replace
// writes a whole notebook (ExpectedHash optional, and exact when given: no
// output-only exception), keeping the version it replaces as a checkpoint
// file before anything is recorded; Rename moves the file without ever
// replacing another (the target's lock held too); Remove deletes it. They
// read the file without parsing it, so a broken file can still be saved
// over, moved or deleted.
//
// OutputWriter follows the log and, when an execution queued for a cell
// (ExecutionQueued with Notebook and CellID) finishes, writes its outputs
// and execution_count into that cell through the same actor — also after a
// server restart, for executions that finished while it was down.
package notebook
