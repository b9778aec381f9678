package main

import (
	"context"
	"log/slog"
)

// componentKey names the part of the server a log line comes from. NB: log
// pipelines filter on it; it must not change.
const componentKey = "component"

// oneComponent makes every log line carry at most one top-level component
// key. The wiring gives each part a logger With(component, X); a part may
// also name a component on one line. Both would be written (slog handlers
// do not merge keys, and encoding/json readers keep only the last), so
// this handler holds the With value back and writes exactly one: the
// line's own if it names one (the most specific), else the With one.
type oneComponent struct {
	h         slog.Handler
	component *slog.Attr // from WithAttrs, written at Handle
}

func withOneComponent(h slog.Handler) slog.Handler { return oneComponent{h: h} }

func (o oneComponent) Enabled(ctx context.Context, l slog.Level) bool { return o.h.Enabled(ctx, l) }

func (o oneComponent) WithAttrs(as []slog.Attr) slog.Handler {
	c := o.component
	rest := make([]slog.Attr, 0, len(as))
	for _, a := range as {
		if a.Key == componentKey {
			c = &a
			continue
		}
		rest = append(rest, a)
	}
	h := o.h
	if len(rest) > 0 {
		h = h.WithAttrs(rest)
	}
	return oneComponent{h: h, component: c}
}

func (o oneComponent) WithGroup(name string) slog.Handler {
	if name == "" {
		return o
	}
	h := o.h
	if o.component != nil {
		// NB: what follows lands inside the group; the component stays
		// at the top level.
		h = h.WithAttrs([]slog.Attr{*o.component})
	}
	return oneComponent{h: h.WithGroup(name)}
}

func (o oneComponent) Handle(ctx context.Context, r slog.Record) error {
	var own *slog.Attr
	n := 0
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == componentKey {
			own = &a
			n++
		}
		return true
	})
	if o.component == nil && n <= 1 {
		return o.h.Handle(ctx, r)
	}
	c := o.component
	if own != nil {
		c = own
	}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	out.AddAttrs(*c)
	r.Attrs(func(a slog.Attr) bool {
		if a.Key != componentKey {
			out.AddAttrs(a)
		}
		return true
	})
	return o.h.Handle(ctx, out)
}
