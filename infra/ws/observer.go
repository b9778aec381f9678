package ws

// Observer is told what the hub does with its clients, for metrics
// (infra/metrics.Live implements it). The hub calls ClientJoined once when a
// client is admitted to the fan-out and ClientLeft exactly once when that
// client's handler returns, whatever ended it; SlowConsumerClosed when a
// client is closed with CloseSlowConsumer (before its ClientLeft). Calls
// come from the clients' handler goroutines, concurrently: they must be
// safe for concurrent use and must not block.
type Observer interface {
	ClientJoined()
	ClientLeft()
	SlowConsumerClosed()
}

// nopObserver is the Observer of a hub given none.
type nopObserver struct{}

func (nopObserver) ClientJoined()       {}
func (nopObserver) ClientLeft()         {}
func (nopObserver) SlowConsumerClosed() {}
