package system

import (
	"fmt"
	"time"

	"github.com/asynkron/protoactor-go/actor"
)

type ping struct{}
type pong struct{}

// Ping reports whether the actor system still schedules and delivers
// messages: it spawns a throwaway actor, asks it, and stops it, all within
// timeout. Liveness probes call it; ErrClosed once Close has begun.
func (s *System) Ping(timeout time.Duration) error {
	s.mu.RLock()
	closed := s.closed
	s.mu.RUnlock()
	if closed {
		return ErrClosed
	}
	root := s.actors.Root
	pid := root.Spawn(actor.PropsFromFunc(func(c actor.Context) {
		if _, ok := c.Message().(ping); ok {
			c.Respond(pong{})
		}
	}))
	defer root.Stop(pid)
	res, err := root.RequestFuture(pid, ping{}, timeout).Result()
	if err != nil {
		return fmt.Errorf("ping the actor system: %w", err)
	}
	if _, ok := res.(pong); !ok {
		return fmt.Errorf("ping the actor system: answered %T", res)
	}
	return nil
}
