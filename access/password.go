package access

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Password length bounds. The minimum follows NIST SP 800-63B's advice
// for a password chosen by its user (length over composition rules); the
// maximum only stops a request body from being hashed at length.
const (
	MinPasswordLen = 12   // characters
	MaxPasswordLen = 1024 // bytes
)

// ErrPasswordTooShort and ErrPasswordTooLong are ValidatePassword's.
var (
	ErrPasswordTooShort = fmt.Errorf("password too short: at least %d characters", MinPasswordLen)
	ErrPasswordTooLong  = fmt.Errorf("password too long: at most %d bytes", MaxPasswordLen)
)

// ValidatePassword says whether pw may become a password.
func ValidatePassword(pw string) error {
	switch {
	case utf8.RuneCountInString(pw) < MinPasswordLen:
		return ErrPasswordTooShort
	case len(pw) > MaxPasswordLen:
		return ErrPasswordTooLong
	}
	return nil
}

// Params are argon2id's cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // passes
	Threads uint8
}

// DefaultParams are OWASP's first argon2id configuration: 19 MiB, two
// passes, one thread. Its other option, 64 MiB and one pass, resists
// about as well, but a server on two cores and little memory checking a
// burst of logins holds one buffer per check in flight: 19 MiB each keeps
// that small, and one thread per check leaves the other core to the rooms.
func DefaultParams() Params { return Params{Memory: 19 * 1024, Time: 2, Threads: 1} }

// TestParams cost next to nothing. For tests only: never for a real
// password.
func TestParams() Params { return Params{Memory: 64, Time: 1, Threads: 1} }

const (
	saltLen = 16
	keyLen  = 32
	// Bounds on parameters read back from a stored hash: a corrupted or
	// planted hash must not make one check take a gigabyte or a minute.
	maxMemory  = 256 * 1024
	maxTime    = 16
	minSaltLen = 8
	maxKeyLen  = 64
)

// ErrBadHash is a stored hash that is not an argon2id PHC string we can
// check.
var ErrBadHash = errors.New("password hash: not an argon2id PHC string")

// HashPassword hashes pw with DefaultParams.
func HashPassword(pw string) (string, error) { return HashPasswordParams(pw, DefaultParams()) }

// HashPasswordParams hashes pw with a fresh random salt and returns the
// PHC string $argon2id$v=19$m=…,t=…,p=…$salt$hash (unpadded base64),
// which carries its parameters: hashes made with other costs still check.
func HashPasswordParams(pw string, p Params) (string, error) {
	if p.Threads == 0 || p.Time == 0 || p.Memory < 8*uint32(p.Threads) {
		return "", fmt.Errorf("argon2id parameters %+v: need at least one pass, one thread and 8 KiB per thread", p)
	}
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, keyLen)
	b64 := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		b64.EncodeToString(salt), b64.EncodeToString(key)), nil
}

// parsedHash is a PHC string taken apart.
type parsedHash struct {
	p         Params
	salt, key []byte
}

func parseHash(hash string) (parsedHash, error) {
	var h parsedHash
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return h, ErrBadHash
	}
	if parts[2] != fmt.Sprintf("v=%d", argon2.Version) {
		return h, fmt.Errorf("%w (version %q)", ErrBadHash, parts[2])
	}
	var threads uint32
	// Parsed, then printed back: trailing junk or leading zeros do not pass.
	if _, err := fmt.Sscanf(parts[3], "m=%d,t=%d,p=%d", &h.p.Memory, &h.p.Time, &threads); err != nil ||
		fmt.Sprintf("m=%d,t=%d,p=%d", h.p.Memory, h.p.Time, threads) != parts[3] ||
		threads == 0 || threads > 255 || h.p.Time == 0 || h.p.Time > maxTime ||
		h.p.Memory < 8*threads || h.p.Memory > maxMemory {
		return h, fmt.Errorf("%w (parameters %q)", ErrBadHash, parts[3])
	}
	h.p.Threads = uint8(threads)
	var err error
	if h.salt, err = base64.RawStdEncoding.DecodeString(parts[4]); err != nil || len(h.salt) < minSaltLen {
		return h, fmt.Errorf("%w (salt)", ErrBadHash)
	}
	if h.key, err = base64.RawStdEncoding.DecodeString(parts[5]); err != nil || len(h.key) < 16 || len(h.key) > maxKeyLen {
		return h, fmt.Errorf("%w (key)", ErrBadHash)
	}
	return h, nil
}

// CheckPassword tells whether pw matches hash, comparing in constant
// time. A malformed hash is an error, a wrong password is (false, nil).
func CheckPassword(hash, pw string) (bool, error) {
	h, err := parseHash(hash)
	if err != nil {
		return false, err
	}
	key := argon2.IDKey([]byte(pw), h.salt, h.p.Time, h.p.Memory, h.p.Threads, uint32(len(h.key)))
	return subtle.ConstantTimeCompare(key, h.key) == 1, nil
}

// dummyHash is DefaultParams' hash of a random password nobody kept.
const dummyHash = "$argon2id$v=19$m=19456,t=2,p=1$743ijcZHvQiLg9JoB4jSHw$sZMG5iRMDqmfkL7A2vhsJ4vol/KMlNB5sndHKZGqSXs"

// DummyCheck costs what CheckPassword costs on a DefaultParams hash and
// matches nothing. Call it when the login is unknown, so that the
// answer's timing does not tell which logins exist.
func DummyCheck(pw string) { _, _ = CheckPassword(dummyHash, pw) }

// Hasher is the server's password checker. It bounds how many hashes run
// at once, so that a burst of logins queues instead of taking one
// argon2 buffer each (memory) and every core (the rooms' signaling), and
// it knows the cost of its hashes for DummyCheck.
type Hasher struct {
	p     Params
	slots chan struct{}

	dummyOnce sync.Once
	dummy     string
	dummyErr  error
}

// NewHasher returns a Hasher hashing with p, running at most concurrency
// hashes at once (GOMAXPROCS if concurrency ≤ 0).
func NewHasher(p Params, concurrency int) *Hasher {
	if concurrency <= 0 {
		concurrency = runtime.GOMAXPROCS(0)
	}
	return &Hasher{p: p, slots: make(chan struct{}, concurrency)}
}

// acquire waits for a free slot or ctx's end.
func (h *Hasher) acquire(ctx context.Context) error {
	select {
	case h.slots <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (h *Hasher) release() { <-h.slots }

// Hash hashes pw with the Hasher's parameters (it does not validate pw:
// that is ValidatePassword's, when a password is chosen).
func (h *Hasher) Hash(ctx context.Context, pw string) (string, error) {
	if err := h.acquire(ctx); err != nil {
		return "", err
	}
	defer h.release()
	return HashPasswordParams(pw, h.p)
}

// Check is CheckPassword, in turn with the other checks.
func (h *Hasher) Check(ctx context.Context, hash, pw string) (bool, error) {
	if err := h.acquire(ctx); err != nil {
		return false, err
	}
	defer h.release()
	return CheckPassword(hash, pw)
}

// DummyCheck is the package's DummyCheck at the Hasher's cost, in turn
// with the other checks.
func (h *Hasher) DummyCheck(ctx context.Context, pw string) error {
	h.dummyOnce.Do(func() {
		// Computed once, on first use: a random password nobody knows.
		var b [16]byte
		_, _ = rand.Read(b[:])
		h.dummy, h.dummyErr = HashPasswordParams(base64.RawStdEncoding.EncodeToString(b[:]), h.p)
	})
	if h.dummyErr != nil {
		return h.dummyErr
	}
	_, err := h.Check(ctx, h.dummy, pw)
	return err
}

// NeedsRehash tells whether hash was made with other parameters than the
// Hasher's (or cannot be read): after a successful login the caller may
// store a fresh hash, so that raising the cost reaches every account.
func (h *Hasher) NeedsRehash(hash string) bool {
	ph, err := parseHash(hash)
	return err != nil || ph.p != h.p || len(ph.salt) != saltLen || len(ph.key) != keyLen
}
