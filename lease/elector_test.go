package lease

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/zap"
)

// memStore is a Store in memory with S3's conditional-write rules; fail, when set, is asked
// before every call and may fail it.
type memStore struct {
	mu     sync.Mutex
	rec    *Record
	etag   string
	n      int
	writes int
	fail   func(op string) error
}

func (m *memStore) Where() string { return "mem/lease.json" }

func (m *memStore) check(op string) error {
	if m.fail != nil {
		return m.fail(op)
	}
	return nil
}

func (m *memStore) Get(context.Context) (Record, string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("get"); err != nil {
		return Record{}, "", err
	}
	if m.rec == nil {
		return Record{}, "", ErrNotFound
	}
	return *m.rec, m.etag, nil
}

func (m *memStore) Create(_ context.Context, r Record) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("create"); err != nil {
		return "", err
	}
	if m.rec != nil {
		return "", ErrConflict
	}
	return m.set(r), nil
}

func (m *memStore) Replace(_ context.Context, r Record, etag string) (string, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if err := m.check("replace"); err != nil {
		return "", err
	}
	if m.rec == nil || etag != m.etag {
		return "", ErrConflict
	}
	return m.set(r), nil
}

func (m *memStore) set(r Record) string {
	m.n++
	m.writes++
	m.rec, m.etag = &r, "etag-"+strconv.Itoa(m.n)
	return m.etag
}

// clock is a settable clock shared by the electors of a test, with a skew each.
type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func (c *clock) skewed(skew time.Duration) func() time.Time {
	return func() time.Time {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.now.Add(skew)
	}
}

const (
	testDuration = 10 * time.Second
	testRenew    = 2 * time.Second
)

func newTestElector(t *testing.T, s Store, id string, now func() time.Time, changes *[]Status) *Elector {
	t.Helper()
	e, err := New(s, Options{Identity: id, Duration: testDuration, RenewInterval: testRenew,
		StepBudget: time.Second, Now: now, OnChange: func(st Status) {
			if changes != nil {
				*changes = append(*changes, st)
			}
		}}, zap.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestFirstCreatesThenRenews(t *testing.T) {
	ctx := context.Background()
	s := &memStore{}
	c := &clock{now: time.Unix(1_000_000, 0)}
	var changes []Status
	a := newTestElector(t, s, "a", c.skewed(0), &changes)
	if err := a.MayWrite(ctx, "before"); err == nil || !strings.Contains(err.Error(), "not the leader") {
		t.Fatalf("MayWrite before any read = %v, want not the leader", err)
	}
	a.Tick(ctx)
	st := a.Status()
	if st.Role != RoleLeader || st.Holder != "a" || st.Term != 1 || len(changes) != 1 {
		t.Fatalf("after the first tick: %+v (changes %d), want leader a in term 1", st, len(changes))
	}
	if err := a.MayWrite(ctx, "repair"); err != nil {
		t.Fatalf("MayWrite as a fresh leader: %v", err)
	}
	for range 10 { // renewals keep the term
		c.advance(testRenew)
		a.Tick(ctx)
	}
	if st := a.Status(); st.Role != RoleLeader || st.Term != 1 || s.rec.Term != 1 || len(changes) != 1 {
		t.Fatalf("after renewals: %+v, stored term %d, changes %d; want leader, term 1, no change", st, s.rec.Term, len(changes))
	}
	if want := c.skewed(0)().UTC().Add(testDuration); !s.rec.Expires.Equal(want) {
		t.Errorf("stored expiry %s, want %s", s.rec.Expires, want)
	}
}

// TestTakeoverWaitsOneLeaseOnOwnClock: a follower takes over a lease that stopped being
// renewed only after a whole lease duration on its own clock, however far the holder's clock
// (and so the expiry it wrote) is off; the term grows; the old holder, waking up, writes
// nothing and steps down.
func TestTakeoverWaitsOneLeaseOnOwnClock(t *testing.T) {
	ctx := context.Background()
	for _, skew := range []time.Duration{-time.Hour, 0, time.Hour} {
		t.Run("holder skew "+skew.String(), func(t *testing.T) {
			s := &memStore{}
			c := &clock{now: time.Unix(1_000_000, 0)}
			a := newTestElector(t, s, "a", c.skewed(skew), nil)
			b := newTestElector(t, s, "b", c.skewed(0), nil)
			a.Tick(ctx)
			b.Tick(ctx)
			if a.Status().Role != RoleLeader || b.Status().Role != RoleFollower {
				t.Fatalf("a %+v, b %+v; want a leader", a.Status(), b.Status())
			}
			if r := b.Status().Reason; !strings.Contains(r, "a holds the lease") {
				t.Errorf("follower's reason %q, want it to name the holder", r)
			}
			// a stops renewing (paused). b reads every renew interval.
			for elapsed := testRenew; elapsed < testDuration; elapsed += testRenew {
				c.advance(testRenew)
				b.Tick(ctx)
				if b.IsLeader() {
					t.Fatalf("b took over after %s, before one lease duration", elapsed)
				}
			}
			c.advance(testRenew)
			b.Tick(ctx)
			if st := b.Status(); st.Role != RoleLeader || st.Term != 2 {
				t.Fatalf("b after one lease duration: %+v, want leader in term 2", st)
			}
			// a wakes up: its own clock says its lease ran out; it neither writes nor leads.
			writes := s.writes
			if err := a.MayWrite(ctx, "repair"); err == nil {
				t.Fatal("the old holder may write after its lease ran out")
			}
			a.Tick(ctx)
			if a.IsLeader() || s.writes != writes || s.rec.Holder != "b" {
				t.Fatalf("old holder after waking: leader=%v, writes %d->%d, holder %q", a.IsLeader(), writes, s.writes, s.rec.Holder)
			}
		})
	}
}

// TestLeaderChecksTimeLeft: a leader whose renewals fail keeps writing only while its lease
// has the step budget left, and gives up leadership when it runs out.
func TestLeaderChecksTimeLeft(t *testing.T) {
	ctx := context.Background()
	down := errors.New("connection refused")
	s := &memStore{}
	c := &clock{now: time.Unix(1_000_000, 0)}
	a := newTestElector(t, s, "a", c.skewed(0), nil)
	a.Tick(ctx)
	lctx, cancel := a.WhileLeader(ctx)
	defer cancel()
	s.fail = func(string) error { return down }
	c.advance(testDuration - 1500*time.Millisecond)
	a.Tick(ctx) // renewal fails: still the leader, 1.5 s left
	if err := a.MayWrite(ctx, "x"); err != nil {
		t.Fatalf("MayWrite with 1.5 s left of a 1 s budget: %v", err)
	}
	c.advance(time.Second)
	if err := a.MayWrite(ctx, "restart MinIO"); err == nil || !strings.Contains(err.Error(), "left") {
		t.Fatalf("MayWrite with 0.5 s left = %v, want a refusal naming the time left", err)
	}
	c.advance(time.Second)
	a.Tick(ctx)
	if st := a.Status(); st.Role != RoleFollower || !strings.Contains(st.Reason, "cannot read the lease") {
		t.Fatalf("after the lease ran out with the store down: %+v", st)
	}
	select {
	case <-lctx.Done():
	case <-time.After(5 * time.Second):
		t.Fatal("the leader's context did not end with its leadership")
	}
}

func TestReleaseHandsOverAtOnce(t *testing.T) {
	ctx := context.Background()
	s := &memStore{}
	c := &clock{now: time.Unix(1_000_000, 0)}
	a := newTestElector(t, s, "a", c.skewed(0), nil)
	b := newTestElector(t, s, "b", c.skewed(0), nil)
	a.Tick(ctx)
	b.Tick(ctx)
	if r := b.HoldWrites(ctx); !strings.Contains(r, "a holds the lease") {
		t.Errorf("follower's HoldWrites %q, want it to name the holder", r)
	}
	if r := a.HoldWrites(ctx); r != "" {
		t.Errorf("leader's HoldWrites %q, want none", r)
	}
	a.StepDown()
	if err := a.MayWrite(ctx, "x"); err == nil || !strings.Contains(err.Error(), "shutting down") {
		t.Fatalf("MayWrite after StepDown = %v", err)
	}
	if err := a.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if s.rec.Holder != "" || s.rec.Term != 1 {
		t.Fatalf("released record %+v, want no holder, term 1", *s.rec)
	}
	c.advance(testRenew)
	b.Tick(ctx)
	if st := b.Status(); st.Role != RoleLeader || st.Term != 2 {
		t.Fatalf("b after the release: %+v, want leader in term 2 without waiting", st)
	}
	if r := b.HoldWrites(ctx); r != "" {
		t.Errorf("new leader's HoldWrites %q, want none", r)
	}
}

// TestRotationTimeCarriesOver: a rotation a leader notes goes into the lease at its next
// write, and the next leader reads it and keeps it in its own writes.
func TestRotationTimeCarriesOver(t *testing.T) {
	ctx := context.Background()
	s := &memStore{}
	c := &clock{now: time.Unix(1_000_000, 0)}
	a := newTestElector(t, s, "a", c.skewed(0), nil)
	b := newTestElector(t, s, "b", c.skewed(0), nil)
	a.Tick(ctx)
	rotated := c.skewed(0)().UTC()
	a.NoteRotation(rotated)
	c.advance(testRenew)
	a.Tick(ctx)
	if !s.rec.SecretRotatedAt.Equal(rotated) {
		t.Fatalf("stored rotation time %s, want %s", s.rec.SecretRotatedAt, rotated)
	}
	b.Tick(ctx)
	if got := b.Status().SecretRotatedAt; !got.Equal(rotated) {
		t.Fatalf("follower reads rotation time %s, want %s", got, rotated)
	}
	for range 6 { // a stops; b takes over after a whole lease
		c.advance(testRenew)
		b.Tick(ctx)
	}
	if !b.IsLeader() || !s.rec.SecretRotatedAt.Equal(rotated) || s.rec.Holder != "b" {
		t.Fatalf("after the takeover: leader=%v, record %+v; want b holding, rotation time kept", b.IsLeader(), *s.rec)
	}
}
