package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"
)

// progress draws a bar on stderr for long replays and exports when stderr
// is a terminal; piped or redirected, it says nothing. It is driven by the
// work (add), never by a timer.
type progress struct {
	w     io.Writer // nil when quiet
	label string
	total uint64
	n     uint64
	check uint64 // n at which to look at the clock next
	drawn time.Time
	shown bool
}

// progressEvery is how many events pass between looks at the clock.
const progressEvery = 16384

func newProgress(stderr io.Writer, label string, total uint64) *progress {
	p := &progress{label: label, total: total, check: progressEvery, drawn: time.Now()}
	if f, ok := stderr.(*os.File); ok && total > 0 {
		if fi, err := f.Stat(); err == nil && fi.Mode()&os.ModeCharDevice != 0 {
			p.w = f
		}
	}
	return p
}

// add counts n more events done.
func (p *progress) add(n uint64) {
	p.n += n
	if p.w == nil || p.n < p.check {
		return
	}
	p.check = p.n + progressEvery
	if now := time.Now(); now.Sub(p.drawn) >= 100*time.Millisecond {
		p.drawn = now
		p.draw()
	}
}

func (p *progress) draw() {
	const width = 30
	frac := min(float64(p.n)/float64(p.total), 1)
	filled := int(frac * width)
	fmt.Fprintf(p.w, "\r%s [%s%s] %3.0f%% %d/%d events", p.label,
		strings.Repeat("#", filled), strings.Repeat(".", width-filled), frac*100, p.n, p.total)
	p.shown = true
}

// done clears the bar.
func (p *progress) done() {
	if p.w != nil && p.shown {
		fmt.Fprint(p.w, "\r\033[K")
		p.shown = false
	}
}
