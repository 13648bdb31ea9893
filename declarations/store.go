package declarations

import (
	"context"
	"errors"
	"time"
)

// Op is one write in a batch: exactly one of Insert or Amend is set.
type Op struct {
	Insert *Declaration
	Amend  *AmendOp
}

// AmendOp asks to amend declaration ID on behalf of Actor.
type AmendOp struct {
	ID        string
	Actor     Actor
	Amendment Amendment
	At        time.Time
}

// OpResult is the outcome of one Op. Err is set for an op refused on its
// own (unknown declaration, forbidden amendment) without failing the batch.
type OpResult struct {
	Decl Declaration
	// Existed: an insert whose (declarant, idempotency key) was already
	// stored; Decl is the original.
	Existed bool
	// Version is the commune's version after the op (unchanged if Existed).
	Version int64
	// Previous holds the values before an amendment (to adjust aggregates).
	Previous *Declaration
	Err      error
}

// Errors of Store and Service.
var (
	ErrNotFound  = errors.New("declaration not found")
	ErrForbidden = errors.New("not allowed for this token")
	ErrClosed    = errors.New("declarations service stopped")
	// ErrKeyReused: the declarant's idempotency key names a declaration
	// first sent with other values (422; nothing stored or counted).
	ErrKeyReused = errors.New("idempotency key already used for another declaration")
)

// Store persists declarations. Implementations must pass
// declarationstest.Run.
type Store interface {
	// Apply runs the ops in order in ONE transaction and returns only once
	// it is durable: this is what makes group commit possible. An error
	// means nothing of the batch was stored.
	Apply(ctx context.Context, ops []Op) ([]OpResult, error)
	// Declaration returns one declaration, ErrNotFound if unknown.
	Declaration(ctx context.Context, id string) (Declaration, error)
	// Declarations lists declarations, of one commune if commune != "",
	// ordered by creation.
	Declarations(ctx context.Context, commune string) ([]Declaration, error)
	Revisions(ctx context.Context, id string) ([]Revision, error)
	// Counts returns every (commune, date, place) sum of current counts and
	// every commune's version: what the in-memory aggregates start from.
	Counts(ctx context.Context) ([]Cell, map[string]int64, error)
	Ping(ctx context.Context) error
}

// Cell is one aggregate cell.
type Cell struct {
	Commune string
	Date    string
	Place   string
	Count   int
}
