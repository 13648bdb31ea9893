package postgres

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/jackc/pgx/v5"

	"crisisroom/declarations"
)

// Declarations returns the declarations.Store view of s.
func (s *Store) Declarations() declarations.Store { return declStore{s} }

type declStore struct{ s *Store }

const declCols = `id, commune, day, place, count, note, idem_key, declarant, declarant_label, created_at, revision`

func scanDecl(row pgx.Row) (declarations.Declaration, error) {
	var d declarations.Declaration
	err := row.Scan(&d.ID, &d.Commune, &d.Date, &d.Place, &d.Count, &d.Note, &d.IdempotencyKey,
		&d.Declarant, &d.DeclarantLabel, &d.CreatedAt, &d.Revision)
	d.CreatedAt = d.CreatedAt.UTC()
	return d, err
}

// maxAttempts bounds the runs of one batch (see Apply).
const maxAttempts = 3

// Apply implements declarations.Store: one transaction per batch, one
// commit (one WAL flush) however many ops, at READ COMMITTED. Idempotency
// rests on the UNIQUE (declarant, idem_key) constraint with INSERT … ON
// CONFLICT DO NOTHING, so two instances taking the same retried request
// store it once.
//
// A batch is run again when it failed before COMMIT was sent, so surely
// stored nothing, for a reason that may pass: PostgreSQL broke a deadlock
// with another instance's batch, or the pooled connection was dead (the
// database restarted since it was last used). A failure at COMMIT is
// returned as is: the batch may or may not be stored.
func (d declStore) Apply(ctx context.Context, ops []declarations.Op) ([]declarations.OpResult, error) {
	for i, op := range ops { // checked first: below, an error is the database's or the connection's
		if (op.Insert == nil) == (op.Amend == nil) {
			return nil, fmt.Errorf("op %d: exactly one of insert and amend must be set", i)
		}
	}
	for attempt := 1; ; attempt++ {
		res, err := d.applyOnce(ctx, ops)
		var ce commitError
		if err == nil || attempt == maxAttempts || ctx.Err() != nil || errors.As(err, &ce) ||
			!(retryable(err) || !isServerError(err)) {
			return res, err
		}
	}
}

// commitError marks a failure of COMMIT itself.
type commitError struct{ error }

func (e commitError) Unwrap() error { return e.error }

// applyOnce runs the batch. Consecutive inserts go in one statement each
// step (arrays through unnest), amends one by one; commune versions are
// raised last, in one statement in commune order, so that concurrent
// batches lock version rows in the same order and cannot deadlock on them.
func (d declStore) applyOnce(ctx context.Context, ops []declarations.Op) ([]declarations.OpResult, error) {
	tx, err := d.s.pool.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	res := make([]declarations.OpResult, len(ops))
	for i := 0; i < len(ops); {
		switch {
		case ops[i].Insert != nil:
			j := i + 1
			for j < len(ops) && ops[j].Insert != nil {
				j++
			}
			if err := insertRun(ctx, tx, ops[i:j], res[i:j]); err != nil {
				return nil, fmt.Errorf("ops %d-%d: %w", i, j-1, err)
			}
			i = j
		default:
			if res[i], err = amendDecl(ctx, tx, *ops[i].Amend); err != nil {
				return nil, fmt.Errorf("op %d: %w", i, err)
			}
			i++
		}
	}
	if err := assignVersions(ctx, tx, res); err != nil {
		return nil, err
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, commitError{err}
	}
	return res, nil
}

// insertRun stores consecutive inserts with the same results as one by
// one in order: a key the declarant already used (before, or earlier in
// the run) yields the original declaration.
func insertRun(ctx context.Context, tx pgx.Tx, ops []declarations.Op, res []declarations.OpResult) error {
	n := len(ops)
	var (
		ids, communes, days, places, notes, keys, declarants, labels = make([]string, n), make([]string, n),
			make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		counts, revisions = make([]int, n), make([]int, n)
		created           = make([]any, n)
	)
	for i, op := range ops {
		in := op.Insert
		ids[i], communes[i], days[i], places[i], notes[i] = in.ID, in.Commune, in.Date, in.Place, in.Note
		keys[i], declarants[i], labels[i] = in.IdempotencyKey, in.Declarant, in.DeclarantLabel
		counts[i], revisions[i], created[i] = in.Count, in.Revision, ts(in.CreatedAt)
	}
	// unnest keeps the array order, and ON CONFLICT DO NOTHING sees rows
	// inserted earlier by the same statement: the first of two equal keys
	// in a run wins, as it would one by one.
	rows, err := tx.Query(ctx, `INSERT INTO declarations(`+declCols+`)
		SELECT * FROM unnest($1::text[], $2::text[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[],
			$8::text[], $9::text[], $10::timestamptz[], $11::int[])
		ON CONFLICT (declarant, idem_key) DO NOTHING RETURNING id`,
		ids, communes, days, places, counts, notes, keys, declarants, labels, created, revisions)
	if err != nil {
		return err
	}
	got, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	inserted := make(map[string]bool, len(got))
	for _, id := range got {
		inserted[id] = true
	}
	var fresh []*declarations.Declaration
	var dupDeclarants, dupKeys []string
	for i, op := range ops {
		if inserted[op.Insert.ID] {
			res[i] = declarations.OpResult{Decl: *op.Insert}
			fresh = append(fresh, op.Insert)
		} else {
			dupDeclarants, dupKeys = append(dupDeclarants, op.Insert.Declarant), append(dupKeys, op.Insert.IdempotencyKey)
		}
	}
	if err := fillExisting(ctx, tx, ops, res, inserted, dupDeclarants, dupKeys); err != nil {
		return err
	}
	return insertRevisions(ctx, tx, fresh)
}

// fillExisting answers the inserts whose key was taken with the original.
func fillExisting(ctx context.Context, tx pgx.Tx, ops []declarations.Op, res []declarations.OpResult,
	inserted map[string]bool, declarants, keys []string) error {
	if len(keys) == 0 {
		return nil
	}
	rows, err := tx.Query(ctx, `SELECT d.id, d.commune, d.day, d.place, d.count, d.note, d.idem_key, d.declarant,
			d.declarant_label, d.created_at, d.revision
		FROM declarations d JOIN unnest($1::text[], $2::text[]) AS k(declarant, idem_key)
			ON d.declarant = k.declarant AND d.idem_key = k.idem_key`, declarants, keys)
	if err != nil {
		return err
	}
	olds, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (declarations.Declaration, error) { return scanDecl(r) })
	if err != nil {
		return err
	}
	byKey := make(map[[2]string]declarations.Declaration, len(olds))
	for _, o := range olds {
		byKey[[2]string{o.Declarant, o.IdempotencyKey}] = o
	}
	for i, op := range ops {
		if inserted[op.Insert.ID] {
			continue
		}
		old, ok := byKey[[2]string{op.Insert.Declarant, op.Insert.IdempotencyKey}]
		if !ok {
			return fmt.Errorf("idempotency key %q: %w", op.Insert.IdempotencyKey, pgx.ErrNoRows)
		}
		res[i] = declarations.OpResult{Decl: old, Existed: true}
	}
	return nil
}

// insertRevisions writes revision 1 of each new declaration.
func insertRevisions(ctx context.Context, tx pgx.Tx, ds []*declarations.Declaration) error {
	if len(ds) == 0 {
		return nil
	}
	n := len(ds)
	ids, days, places, notes, actors, labels := make([]string, n), make([]string, n), make([]string, n),
		make([]string, n), make([]string, n), make([]string, n)
	revs, counts, at := make([]int, n), make([]int, n), make([]any, n)
	for i, d := range ds {
		ids[i], revs[i], days[i], places[i], counts[i], notes[i] = d.ID, d.Revision, d.Date, d.Place, d.Count, d.Note
		actors[i], labels[i], at[i] = d.Declarant, d.DeclarantLabel, ts(d.CreatedAt)
	}
	_, err := tx.Exec(ctx, `INSERT INTO declaration_revisions(declaration_id, revision, day, place, count, note, reason, actor, actor_label, at)
		SELECT r.id, r.rev, r.day, r.place, r.count, r.note, 'déclaration', r.actor, r.label, r.at
		FROM unnest($1::text[], $2::int[], $3::text[], $4::text[], $5::int[], $6::text[], $7::text[], $8::text[], $9::timestamptz[])
			AS r(id, rev, day, place, count, note, actor, label, at)`,
		ids, revs, days, places, counts, notes, actors, labels, at)
	return err
}

// amendDecl amends one declaration; its row is locked first so that two
// instances amending it at once take turns instead of both writing the
// same revision number.
func amendDecl(ctx context.Context, tx pgx.Tx, op declarations.AmendOp) (declarations.OpResult, error) {
	old, err := scanDecl(tx.QueryRow(ctx, `SELECT `+declCols+` FROM declarations WHERE id = $1 FOR UPDATE`, op.ID))
	if errors.Is(err, pgx.ErrNoRows) {
		return declarations.OpResult{Err: declarations.ErrNotFound}, nil
	}
	if err != nil {
		return declarations.OpResult{}, err
	}
	if !declarations.CanAmend(op.Actor, old) {
		return declarations.OpResult{Err: declarations.ErrForbidden}, nil
	}
	nd := declarations.ApplyAmendment(old, op.Amendment)
	if _, err := tx.Exec(ctx, `UPDATE declarations SET day = $1, place = $2, count = $3, note = $4, revision = $5 WHERE id = $6`,
		nd.Date, nd.Place, nd.Count, nd.Note, nd.Revision, nd.ID); err != nil {
		return declarations.OpResult{}, err
	}
	if _, err := tx.Exec(ctx, `INSERT INTO declaration_revisions(declaration_id, revision, day, place, count, note, reason, actor, actor_label, at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, nd.ID, nd.Revision, nd.Date, nd.Place, nd.Count, nd.Note,
		op.Amendment.Reason, op.Actor.ID, op.Actor.Label, ts(op.At)); err != nil {
		return declarations.OpResult{}, err
	}
	return declarations.OpResult{Decl: nd, Previous: &old}, nil
}

// assignVersions raises each commune's version by its number of changes in
// the batch (new declarations and amendments) and hands the versions out
// in op order: the same numbers as raising them one op at a time, since
// the version row stays locked until commit either way.
func assignVersions(ctx context.Context, tx pgx.Tx, res []declarations.OpResult) error {
	counts := map[string]int64{}
	for _, r := range res {
		if r.Err == nil && !r.Existed {
			counts[r.Decl.Commune]++
		}
	}
	if len(counts) == 0 {
		return nil
	}
	communes := make([]string, 0, len(counts))
	for c := range counts {
		communes = append(communes, c)
	}
	slices.Sort(communes) // one lock order for every instance
	by := make([]int64, len(communes))
	for i, c := range communes {
		by[i] = counts[c]
	}
	rows, err := tx.Query(ctx, `INSERT INTO commune_versions(commune, version)
		SELECT * FROM unnest($1::text[], $2::bigint[])
		ON CONFLICT (commune) DO UPDATE SET version = commune_versions.version + EXCLUDED.version
		RETURNING commune, version`, communes, by)
	if err != nil {
		return err
	}
	next := make(map[string]int64, len(communes))
	var c string
	var last int64
	if _, err := pgx.ForEachRow(rows, []any{&c, &last}, func() error {
		next[c] = last - counts[c] + 1
		return nil
	}); err != nil {
		return err
	}
	for i := range res {
		if res[i].Err == nil && !res[i].Existed {
			res[i].Version = next[res[i].Decl.Commune]
			next[res[i].Decl.Commune]++
		}
	}
	return nil
}

// Declaration implements declarations.Store.
func (d declStore) Declaration(ctx context.Context, id string) (declarations.Declaration, error) {
	decl, err := scanDecl(d.s.pool.QueryRow(ctx, `SELECT `+declCols+` FROM declarations WHERE id = $1`, id))
	if errors.Is(err, pgx.ErrNoRows) {
		return decl, declarations.ErrNotFound
	}
	return decl, err
}

// Declarations implements declarations.Store.
func (d declStore) Declarations(ctx context.Context, commune string) ([]declarations.Declaration, error) {
	// Two statements rather than "$1 = '' OR commune = $1": a cached
	// generic plan for that could not use the commune index.
	q, args := `SELECT `+declCols+` FROM declarations`, []any{}
	if commune != "" {
		q, args = q+` WHERE commune = $1`, append(args, commune)
	}
	rows, err := d.s.pool.Query(ctx, q+` ORDER BY created_at, id COLLATE "C"`, args...)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (declarations.Declaration, error) { return scanDecl(r) })
	if out == nil && err == nil {
		out = []declarations.Declaration{}
	}
	return out, err
}

// Revisions implements declarations.Store.
func (d declStore) Revisions(ctx context.Context, id string) ([]declarations.Revision, error) {
	rows, err := d.s.pool.Query(ctx, `SELECT declaration_id, revision, day, place, count, note, reason, actor, actor_label, at
		FROM declaration_revisions WHERE declaration_id = $1 ORDER BY revision`, id)
	if err != nil {
		return nil, err
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (declarations.Revision, error) {
		var r declarations.Revision
		err := row.Scan(&r.DeclarationID, &r.Revision, &r.Date, &r.Place, &r.Count, &r.Note, &r.Reason, &r.Actor, &r.ActorLabel, &r.At)
		r.At = r.At.UTC()
		return r, err
	})
	if out == nil && err == nil {
		out = []declarations.Revision{}
	}
	return out, err
}

// Counts implements declarations.Store, from one snapshot (a repeatable
// read transaction): cells and versions agree even while other instances
// write.
func (d declStore) Counts(ctx context.Context) ([]declarations.Cell, map[string]int64, error) {
	tx, err := d.s.pool.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return nil, nil, err
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT commune, day, place, SUM(count) FROM declarations GROUP BY commune, day, place`)
	if err != nil {
		return nil, nil, err
	}
	cells, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (declarations.Cell, error) {
		var c declarations.Cell
		err := row.Scan(&c.Commune, &c.Date, &c.Place, &c.Count)
		return c, err
	})
	if err != nil {
		return nil, nil, err
	}
	rows, err = tx.Query(ctx, `SELECT commune, version FROM commune_versions`)
	if err != nil {
		return nil, nil, err
	}
	versions := map[string]int64{}
	var c string
	var v int64
	if _, err := pgx.ForEachRow(rows, []any{&c, &v}, func() error { versions[c] = v; return nil }); err != nil {
		return nil, nil, err
	}
	return cells, versions, tx.Commit(ctx)
}

// Ping implements declarations.Store.
func (d declStore) Ping(ctx context.Context) error { return d.s.Ping(ctx) }
