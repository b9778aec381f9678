package mcpserver

import (
	"container/heap"
	"errors"
	"fmt"
	"sync"
	"time"
)

// Replay protection of --policy confirmations: each ask seals a fresh
// nonce in a short-lived request state (PolicyAnswerTTL); its answer is
// accepted once. The set of answered nonces is bounded per principal (one
// principal answering in a loop cannot stop another's confirmations) and
// per server; entries leave it when their state expires, found cheaply
// through a min-heap of expiries. At start the answers of the last
// PolicyAnswerTTL are read back from the log (RememberAnswered); one that
// does not fit is never dropped silently: every state sealed before the
// restart (of that principal, or of everyone when the server bound
// overflowed) is refused instead, and the client is asked again.

// PolicyAnswerTTL is how long a policy confirmation's request state is
// accepted: the user answers a question in minutes (an input() prompt's
// state lives a day: roundTripTTL). It also bounds how long an answer must
// be remembered.
const PolicyAnswerTTL = 15 * time.Minute

const (
	// policyMaxAnsweredPerPrincipal bounds one principal's answers within
	// PolicyAnswerTTL (more than one a second, sustained).
	policyMaxAnsweredPerPrincipal = 1000
	// NB: policyMaxAnswered (policy.go) bounds the whole set.
)

// ErrPolicyAnswered refuses a confirmation answer given a second time.
var ErrPolicyAnswered = errors.New("this confirmation was already answered (an answer counts once): call the tool again without inputResponses and requestState to be asked again")

var (
	// errPolicyAnswersFull refuses an answer while the server-wide set is full.
	errPolicyAnswersFull = fmt.Errorf("too many confirmations answered in the last %s for the server to remember: try again in a few minutes", PolicyAnswerTTL)
	// errPolicyAnswersFullPrincipal refuses an answer while the caller's own bound is full.
	errPolicyAnswersFullPrincipal = fmt.Errorf("you answered too many confirmations in the last %s for the server to remember more of yours: try again in a few minutes", PolicyAnswerTTL)
	// errPolicyNotAnAsk refuses an answer whose state was not sealed by an ask.
	errPolicyNotAnAsk = errors.New("this requestState does not carry an open confirmation question (it was not minted by the question, or the question was already answered): call the tool again without inputResponses and requestState to be asked")
	// errPolicyBeforeRestart refuses a state sealed before a restart that could not read every answer back.
	errPolicyBeforeRestart = errors.New("this confirmation was asked before the server restarted, and the server could not read back every answer given then: call the tool again without inputResponses and requestState to be asked again")
)

type policyAnswer struct {
	principal string
	expires   time.Time
}

type policyExpiry struct {
	expires time.Time
	nonce   string
}

// policyExpiryHeap is a min-heap of expiries (container/heap).
type policyExpiryHeap []policyExpiry

func (h policyExpiryHeap) Len() int           { return len(h) }
func (h policyExpiryHeap) Less(i, j int) bool { return h[i].expires.Before(h[j].expires) }
func (h policyExpiryHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i] }
func (h *policyExpiryHeap) Push(x any)        { *h = append(*h, x.(policyExpiry)) }
func (h *policyExpiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

// policyAnswers is the answered-nonce set. Safe for concurrent use.
type policyAnswers struct {
	mu           sync.Mutex
	byNonce      map[string]policyAnswer
	perPrincipal map[string]int
	expiries     policyExpiryHeap // may hold stale entries (released nonces): checked on pop
	maxPer       int
	maxTotal     int
	// refuseBefore: states sealed at or before it are refused (a restart
	// read back more answers than the set holds); refuseBeforeFor: the
	// same for one principal.
	refuseBefore    time.Time
	refuseBeforeFor map[string]time.Time
}

func newPolicyAnswers() policyAnswers {
	return policyAnswers{byNonce: map[string]policyAnswer{}, perPrincipal: map[string]int{},
		refuseBeforeFor: map[string]time.Time{}, maxPer: policyMaxAnsweredPerPrincipal, maxTotal: policyMaxAnswered}
}

// evictExpired drops the entries whose state expired by now. Caller holds mu.
func (a *policyAnswers) evictExpired(now time.Time) {
	for len(a.expiries) > 0 && !now.Before(a.expiries[0].expires) {
		e := heap.Pop(&a.expiries).(policyExpiry)
		if cur, ok := a.byNonce[e.nonce]; ok && cur.expires.Equal(e.expires) {
			a.remove(e.nonce, cur)
		}
	}
}

func (a *policyAnswers) remove(nonce string, cur policyAnswer) {
	delete(a.byNonce, nonce)
	if a.perPrincipal[cur.principal]--; a.perPrincipal[cur.principal] <= 0 {
		delete(a.perPrincipal, cur.principal)
	}
}

func (a *policyAnswers) add(principal, nonce string, expires time.Time) {
	a.byNonce[nonce] = policyAnswer{principal: principal, expires: expires}
	a.perPrincipal[principal]++
	heap.Push(&a.expiries, policyExpiry{expires: expires, nonce: nonce})
	if len(a.expiries) > 2*a.maxTotal+16 {
		// NB: released nonces leave stale heap entries: rebuild from the set.
		a.expiries = a.expiries[:0]
		for n, v := range a.byNonce {
			a.expiries = append(a.expiries, policyExpiry{expires: v.expires, nonce: n})
		}
		heap.Init(&a.expiries)
	}
}

// claimAnswer marks the confirmation nonce (asked of principal by a state
// sealed at sealed, expiring at expires) answered; a nonce already
// answered is refused (ErrPolicyAnswered), as is a state the ask did not
// seal (an approved call's later state) or one sealed before a restart
// that forgot answers.
func (p *Policy) claimAnswer(principal, nonce string, sealed, expires, now time.Time) error {
	a := &p.answers
	if nonce == "" || sealed.Unix() <= 0 || expires.Sub(sealed) > PolicyAnswerTTL {
		return errPolicyNotAnAsk
	}
	if !now.Before(expires) {
		return ErrRoundTripExpired
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if !a.refuseBefore.IsZero() && sealed.Unix() <= a.refuseBefore.Unix() {
		return errPolicyBeforeRestart
	}
	if t, ok := a.refuseBeforeFor[principal]; ok && sealed.Unix() <= t.Unix() {
		return errPolicyBeforeRestart
	}
	a.evictExpired(now)
	if _, ok := a.byNonce[nonce]; ok {
		return ErrPolicyAnswered
	}
	if a.perPrincipal[principal] >= a.maxPer {
		return errPolicyAnswersFullPrincipal
	}
	if len(a.byNonce) >= a.maxTotal {
		return errPolicyAnswersFull
	}
	a.add(principal, nonce, expires)
	return nil
}

// releaseAnswer forgets a claim whose decision could not be recorded (the
// client may answer again).
func (p *Policy) releaseAnswer(nonce string) {
	a := &p.answers
	a.mu.Lock()
	defer a.mu.Unlock()
	if cur, ok := a.byNonce[nonce]; ok {
		a.remove(nonce, cur)
	}
}

// RememberAnswered marks a confirmation request answered (a PolicyDecided
// confirmed or declined of principal, read back from the log at start,
// decided at decidedAt), so that its answer is not accepted again after a
// restart at now. An answer whose state has expired is skipped. One that
// does not fit the bounds is not dropped silently: every state sealed up
// to now (of principal, or of everyone when the server bound is full) is
// refused, so it can never be replayed. It reports whether the answer was
// remembered one by one (false when expired or when the fallback applied).
func (p *Policy) RememberAnswered(principal, nonce string, decidedAt, now time.Time) bool {
	if nonce == "" {
		return false
	}
	// NB: the state was sealed before the answer; its TTL from the answer
	// is an upper bound on when it expires.
	expires := decidedAt.Add(PolicyAnswerTTL)
	if !now.Before(expires) {
		return false
	}
	a := &p.answers
	a.mu.Lock()
	defer a.mu.Unlock()
	a.evictExpired(now)
	if _, ok := a.byNonce[nonce]; ok {
		return true
	}
	switch {
	case a.perPrincipal[principal] >= a.maxPer:
		a.refuseBeforeFor[principal] = now
		return false
	case len(a.byNonce) >= a.maxTotal:
		a.refuseBefore = now
		return false
	}
	a.add(principal, nonce, expires)
	return true
}
