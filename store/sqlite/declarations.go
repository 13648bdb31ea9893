package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"

	"crisisroom/declarations"
)

// Declarations returns the declarations.Store view of s.
func (s *Store) Declarations() declarations.Store { return declStore{s} }

type declStore struct{ s *Store }

type querier interface {
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

const declCols = `id, commune, day, place, count, note, idem_key, declarant, declarant_label, created_at, revision`

func scanDecl(row interface{ Scan(...any) error }) (declarations.Declaration, error) {
	var d declarations.Declaration
	var created int64
	err := row.Scan(&d.ID, &d.Commune, &d.Date, &d.Place, &d.Count, &d.Note, &d.IdempotencyKey,
		&d.Declarant, &d.DeclarantLabel, &created, &d.Revision)
	d.CreatedAt = fromMS(created)
	return d, err
}

// Apply implements declarations.Store: one IMMEDIATE transaction, one
// fsync at commit (synchronous=FULL), however many ops.
func (d declStore) Apply(ctx context.Context, ops []declarations.Op) ([]declarations.OpResult, error) {
	tx, err := d.s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	res := make([]declarations.OpResult, len(ops))
	for i, op := range ops {
		switch {
		case op.Insert != nil:
			res[i], err = insertDecl(ctx, tx, *op.Insert)
		case op.Amend != nil:
			res[i], err = amendDecl(ctx, tx, *op.Amend)
		default:
			err = errors.New("empty op")
		}
		if err != nil {
			return nil, fmt.Errorf("op %d: %w", i, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return res, nil
}

func insertDecl(ctx context.Context, tx *sql.Tx, in declarations.Declaration) (declarations.OpResult, error) {
	old, err := scanDecl(tx.QueryRowContext(ctx, `SELECT `+declCols+` FROM declarations WHERE declarant = ? AND idem_key = ?`,
		in.Declarant, in.IdempotencyKey))
	if err == nil {
		return declarations.OpResult{Decl: old, Existed: true}, nil
	}
	if !errors.Is(err, sql.ErrNoRows) {
		return declarations.OpResult{}, err
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO declarations(`+declCols+`) VALUES (?,?,?,?,?,?,?,?,?,?,?)`,
		in.ID, in.Commune, in.Date, in.Place, in.Count, in.Note, in.IdempotencyKey, in.Declarant, in.DeclarantLabel,
		ms(in.CreatedAt), in.Revision); err != nil {
		return declarations.OpResult{}, err
	}
	if err := insertRevision(ctx, tx, declarations.Revision{DeclarationID: in.ID, Revision: in.Revision, Date: in.Date,
		Place: in.Place, Count: in.Count, Note: in.Note, Reason: "déclaration", Actor: in.Declarant,
		ActorLabel: in.DeclarantLabel, At: in.CreatedAt}); err != nil {
		return declarations.OpResult{}, err
	}
	v, err := bumpVersion(ctx, tx, in.Commune)
	return declarations.OpResult{Decl: in, Version: v}, err
}

func amendDecl(ctx context.Context, tx *sql.Tx, op declarations.AmendOp) (declarations.OpResult, error) {
	old, err := scanDecl(tx.QueryRowContext(ctx, `SELECT `+declCols+` FROM declarations WHERE id = ?`, op.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return declarations.OpResult{Err: declarations.ErrNotFound}, nil
	}
	if err != nil {
		return declarations.OpResult{}, err
	}
	if !declarations.CanAmend(op.Actor, old) {
		return declarations.OpResult{Err: declarations.ErrForbidden}, nil
	}
	nd := declarations.ApplyAmendment(old, op.Amendment)
	if _, err := tx.ExecContext(ctx, `UPDATE declarations SET day = ?, place = ?, count = ?, note = ?, revision = ? WHERE id = ?`,
		nd.Date, nd.Place, nd.Count, nd.Note, nd.Revision, nd.ID); err != nil {
		return declarations.OpResult{}, err
	}
	if err := insertRevision(ctx, tx, declarations.Revision{DeclarationID: nd.ID, Revision: nd.Revision, Date: nd.Date,
		Place: nd.Place, Count: nd.Count, Note: nd.Note, Reason: op.Amendment.Reason, Actor: op.Actor.ID,
		ActorLabel: op.Actor.Label, At: op.At}); err != nil {
		return declarations.OpResult{}, err
	}
	v, err := bumpVersion(ctx, tx, nd.Commune)
	return declarations.OpResult{Decl: nd, Version: v, Previous: &old}, err
}

func insertRevision(ctx context.Context, tx *sql.Tx, r declarations.Revision) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO declaration_revisions(declaration_id, revision, day, place, count, note, reason, actor, actor_label, at)
		VALUES (?,?,?,?,?,?,?,?,?,?)`, r.DeclarationID, r.Revision, r.Date, r.Place, r.Count, r.Note, r.Reason, r.Actor, r.ActorLabel, ms(r.At))
	return err
}

func bumpVersion(ctx context.Context, q querier, commune string) (int64, error) {
	var v int64
	err := q.QueryRowContext(ctx, `INSERT INTO commune_versions(commune, version) VALUES (?, 1)
		ON CONFLICT(commune) DO UPDATE SET version = version + 1 RETURNING version`, commune).Scan(&v)
	return v, err
}

// Declaration implements declarations.Store.
func (d declStore) Declaration(ctx context.Context, id string) (declarations.Declaration, error) {
	decl, err := scanDecl(d.s.db.QueryRowContext(ctx, `SELECT `+declCols+` FROM declarations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return decl, declarations.ErrNotFound
	}
	return decl, err
}

// Declarations implements declarations.Store.
func (d declStore) Declarations(ctx context.Context, commune string) ([]declarations.Declaration, error) {
	q := `SELECT ` + declCols + ` FROM declarations`
	args := []any{}
	if commune != "" {
		q += ` WHERE commune = ?`
		args = append(args, commune)
	}
	rows, err := d.s.db.QueryContext(ctx, q+` ORDER BY created_at, id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []declarations.Declaration{}
	for rows.Next() {
		decl, err := scanDecl(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, decl)
	}
	return out, rows.Err()
}

// Revisions implements declarations.Store.
func (d declStore) Revisions(ctx context.Context, id string) ([]declarations.Revision, error) {
	rows, err := d.s.db.QueryContext(ctx, `SELECT declaration_id, revision, day, place, count, note, reason, actor, actor_label, at
		FROM declaration_revisions WHERE declaration_id = ? ORDER BY revision`, id)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []declarations.Revision{}
	for rows.Next() {
		var r declarations.Revision
		var at int64
		if err := rows.Scan(&r.DeclarationID, &r.Revision, &r.Date, &r.Place, &r.Count, &r.Note, &r.Reason, &r.Actor, &r.ActorLabel, &at); err != nil {
			return nil, err
		}
		r.At = fromMS(at)
		out = append(out, r)
	}
	return out, rows.Err()
}

// Counts implements declarations.Store.
func (d declStore) Counts(ctx context.Context) ([]declarations.Cell, map[string]int64, error) {
	rows, err := d.s.db.QueryContext(ctx, `SELECT commune, day, place, SUM(count) FROM declarations GROUP BY commune, day, place`)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var cells []declarations.Cell
	for rows.Next() {
		var c declarations.Cell
		if err := rows.Scan(&c.Commune, &c.Date, &c.Place, &c.Count); err != nil {
			return nil, nil, err
		}
		cells = append(cells, c)
	}
	if err := rows.Err(); err != nil {
		return nil, nil, err
	}
	vrows, err := d.s.db.QueryContext(ctx, `SELECT commune, version FROM commune_versions`)
	if err != nil {
		return nil, nil, err
	}
	defer vrows.Close()
	versions := map[string]int64{}
	for vrows.Next() {
		var c string
		var v int64
		if err := vrows.Scan(&c, &v); err != nil {
			return nil, nil, err
		}
		versions[c] = v
	}
	return cells, versions, vrows.Err()
}

// Ping implements declarations.Store.
func (d declStore) Ping(ctx context.Context) error { return d.s.Ping(ctx) }
