package access

import (
	"context"
	"errors"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestValidatePassword(t *testing.T) {
	for _, c := range []struct {
		pw   string
		want error
	}{
		{"", ErrPasswordTooShort},
		{"elevenchars", ErrPasswordTooShort},
		{"twelve chars", nil},
		{"éééééééééééé", nil}, // 12 characters, 24 bytes
		{"éééééééééé", ErrPasswordTooShort},
		{strings.Repeat("x", MaxPasswordLen), nil},
		{strings.Repeat("x", MaxPasswordLen+1), ErrPasswordTooLong},
	} {
		if err := ValidatePassword(c.pw); !errors.Is(err, c.want) {
			t.Errorf("ValidatePassword(%d bytes) = %v, want %v", len(c.pw), err, c.want)
		}
	}
	if !strings.Contains(ErrPasswordTooShort.Error(), "12") {
		t.Errorf("error %q does not say the minimum", ErrPasswordTooShort)
	}
}

func TestHashAndCheck(t *testing.T) {
	p := TestParams()
	h, err := HashPasswordParams("correct horse battery", p)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") || strings.Count(h, "$") != 5 {
		t.Fatalf("hash %q is not an argon2id PHC string", h)
	}
	if strings.Contains(h, "correct horse") {
		t.Fatal("the hash contains the password")
	}
	h2, _ := HashPasswordParams("correct horse battery", p)
	if h == h2 {
		t.Fatal("two hashes of one password are equal: no random salt")
	}
	for pw, want := range map[string]bool{"correct horse battery": true, "correct horse batterY": false, "": false} {
		if ok, err := CheckPassword(h, pw); err != nil || ok != want {
			t.Errorf("CheckPassword(%q) = %v, %v; want %v", pw, ok, err, want)
		}
	}
}

// TestDefaultParams: the production cost is what the comment says, and a
// hash made with it checks (one real hash: about 50 ms).
func TestDefaultParams(t *testing.T) {
	p := DefaultParams()
	if p.Memory != 19*1024 || p.Time != 2 || p.Threads != 1 {
		t.Fatalf("DefaultParams = %+v, want OWASP's m=19456 t=2 p=1", p)
	}
	h, err := HashPassword("a long enough password")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h, "$argon2id$v=19$m=19456,t=2,p=1$") {
		t.Fatalf("hash %q", h)
	}
	if ok, err := CheckPassword(h, "a long enough password"); !ok || err != nil {
		t.Fatalf("check: %v, %v", ok, err)
	}
}

// TestDummyCheck: the dummy hash is well formed, of the default cost (so
// an unknown login takes as long as a known one), and matches nothing.
func TestDummyCheck(t *testing.T) {
	ph, err := parseHash(dummyHash)
	if err != nil || ph.p != DefaultParams() || len(ph.salt) != saltLen || len(ph.key) != keyLen {
		t.Fatalf("dummy hash: %+v, %v; want DefaultParams", ph, err)
	}
	if ok, err := CheckPassword(dummyHash, ""); ok || err != nil {
		t.Fatalf("dummy hash matched the empty password: %v, %v", ok, err)
	}
	DummyCheck("anything") // returns, does not panic
}

func TestCheckRejectsBadHashes(t *testing.T) {
	good, _ := HashPasswordParams("correct horse battery", TestParams())
	parts := strings.Split(good, "$")
	with := func(i int, v string) string {
		p := append([]string(nil), parts...)
		p[i] = v
		return strings.Join(p, "$")
	}
	for name, h := range map[string]string{
		"empty":            "",
		"bcrypt":           "$2a$10$abcdefghijklmnopqrstuuFoo",
		"argon2i":          with(1, "argon2i"),
		"old version":      with(2, "v=16"),
		"huge memory":      with(3, "m=4194304,t=1,p=1"),
		"many passes":      with(3, "m=64,t=1000,p=1"),
		"no threads":       with(3, "m=64,t=1,p=0"),
		"trailing junk":    with(3, "m=64,t=1,p=1x"),
		"missing param":    with(3, "m=64,t=1"),
		"bad salt":         with(4, "!!!"),
		"short salt":       with(4, "AAAA"),
		"bad key":          with(5, "%%%"),
		"one part too few": strings.Join(parts[:5], "$"),
	} {
		if ok, err := CheckPassword(h, "correct horse battery"); ok || !errors.Is(err, ErrBadHash) {
			t.Errorf("%s: CheckPassword = %v, %v; want ErrBadHash", name, ok, err)
		}
	}
}

func TestHasher(t *testing.T) {
	ctx := context.Background()
	h := NewHasher(TestParams(), 2)
	hash, err := h.Hash(ctx, "correct horse battery")
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := h.Check(ctx, hash, "correct horse battery"); !ok || err != nil {
		t.Fatalf("check: %v, %v", ok, err)
	}
	if err := h.DummyCheck(ctx, "anything"); err != nil {
		t.Fatalf("dummy check: %v", err)
	}
	if h.NeedsRehash(hash) {
		t.Fatal("a hash of the hasher's own parameters needs rehashing")
	}
	old, _ := HashPasswordParams("correct horse battery", Params{Memory: 128, Time: 1, Threads: 1})
	if !h.NeedsRehash(old) || !h.NeedsRehash("garbage") {
		t.Fatal("a hash of other parameters does not need rehashing")
	}
	// A hash made with other parameters still checks.
	if ok, err := h.Check(ctx, old, "correct horse battery"); !ok || err != nil {
		t.Fatalf("check of an older hash: %v, %v", ok, err)
	}
}

// TestHasherBoundsConcurrency: no more checks run at once than the
// hasher's slots, and a caller that gives up while queued leaves.
func TestHasherBoundsConcurrency(t *testing.T) {
	h := NewHasher(TestParams(), 2)
	hash, _ := HashPasswordParams("correct horse battery", TestParams())
	// Hold both slots, as two slow checks would.
	for range 2 {
		h.slots <- struct{}{}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if _, err := h.Check(ctx, hash, "x"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("check with every slot taken: %v, want the context's deadline", err)
	}
	<-h.slots
	<-h.slots

	var running, peak atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := h.acquire(context.Background()); err != nil {
				t.Error(err)
				return
			}
			n := running.Add(1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			_, _ = CheckPassword(hash, "x")
			running.Add(-1)
			h.release()
		}()
	}
	wg.Wait()
	if p := peak.Load(); p > 2 {
		t.Fatalf("%d checks ran at once, want at most 2", p)
	}
}
