// Package actors holds what every actor of mcp-jupyter shares: the small
// interfaces they need from the outside world (the event log) and the
// recovery step that rebuilds an actor's state from its stream.
//
// Every actor in the sub-packages (kernel, scheduler, lease, checkpoint)
// follows one recipe:
//
//  1. state.go: type State and func Apply(State, events.Event) State — a pure
//     fold: no clock, no I/O, no goroutines, no map-order dependence.
//  2. decide.go: func Decide(State, Command, now) ([]events.Draft, error) —
//     validates a command against the state and turns it into events, or
//     refuses it with a typed error. No side effects.
//  3. actor.go: the protoactor shell. On a command: Decide, Log.Append
//     (durable, awaited), Apply each event, reply, then perform effects.
//     If the append fails nothing is applied, the caller gets the error and
//     the actor stops, so supervision rebuilds it from the log.
//  4. On start (and restart after a crash) the shell calls Recover, which
//     folds the actor's stream through Apply — never through Receive — so
//     replay performs no effects. Effects owed after recovery (re-dial a
//     kernel, run the next queued execution) are derived from the state.
package actors
