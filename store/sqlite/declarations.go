package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"crisisroom/declarations"
)

// Declarations returns the declarations.Store view of s.
func (s *Store) Declarations() declarations.Store { return declStore{s} }

type declStore struct{ s *Store }

// declarationsByTimeMigration replaces the index on (commune, created_at)
// by one on (created_at, commune). The old one had a page being appended to
// per commune: a group commit of n declarations from n communes rewrote n
// of its pages. The new one grows at its end, a page or two per commit. A
// commune's history scans it instead of seeking (one small entry per
// declaration, the commune in it): slower for a page a mayor opens, but
// off the intake's path; the list of all declarations no longer sorts.
// (Part of commit c1e5927's measured intake gain, not measured apart.)
const declarationsByTimeMigration = `DROP INDEX declarations_commune;
	CREATE INDEX declarations_created ON declarations(created_at, commune);`

const declCols = `id, commune, day, place, count, note, idem_key, declarant, declarant_label, created_at, revision`

func scanDecl(row interface{ Scan(...any) error }) (declarations.Declaration, error) {
	var d declarations.Declaration
	var created int64
	err := row.Scan(&d.ID, &d.Commune, &d.Date, &d.Place, &d.Count, &d.Note, &d.IdempotencyKey,
		&d.Declarant, &d.DeclarantLabel, &created, &d.Revision)
	d.CreatedAt = fromMS(created)
	return d, err
}

// batch is one Apply's transaction with the prepared statements bound to it.
type batch struct {
	tx        *sql.Tx
	st        *stmts
	declByKey *sql.Stmt
	args      []any // reused by every multi-row statement of the batch
}

// Apply implements declarations.Store: one IMMEDIATE transaction, one
// fsync at commit (synchronous=FULL), however many ops. Consecutive inserts
// go in multi-row statements: with the pure-Go SQLite, per-statement
// overhead, not the disk, bounds the group committer.
func (d declStore) Apply(ctx context.Context, ops []declarations.Op) ([]declarations.OpResult, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	// The driver watches a cancellable context with a goroutine per
	// statement, which costs more than a small statement. A batch runs in
	// milliseconds and its lock waits are bounded by busy_timeout, so it
	// runs to its end once begun, like the caller's commit (see
	// declarations.Service.submit).
	ctx = context.WithoutCancel(ctx)
	tx, err := d.s.wdb.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	st := &d.s.stmts
	b := &batch{tx: tx, st: st}
	res := make([]declarations.OpResult, len(ops))
	for i := 0; i < len(ops); {
		switch {
		case ops[i].Insert != nil:
			j := i + 1
			for j < len(ops) && j-i < insertChunk && ops[j].Insert != nil {
				j++
			}
			if err := insertRun(ctx, b, ops[i:j], res[i:j]); err != nil {
				return nil, fmt.Errorf("ops %d-%d: %w", i, j-1, err)
			}
			i = j
		case ops[i].Amend != nil:
			if res[i], err = amendDecl(ctx, b, *ops[i].Amend); err != nil {
				return nil, fmt.Errorf("op %d: %w", i, err)
			}
			i++
		default:
			return nil, fmt.Errorf("op %d: empty op", i)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, err
	}
	return res, nil
}

// Multi-row statements come in sizes 1, 2, 4 … insertChunk; a run of n
// inserts is split by the binary digits of n.
const (
	insertSizes = 7
	insertChunk = 1 << (insertSizes - 1)
)

// insertDeclsSQL stores n declarations, skipping those whose (declarant,
// key) is taken. It returns nothing: the rows affected say whether every
// row went in, which is the rule, and only otherwise are the ops told
// apart (see insertRun).
func insertDeclsSQL(n int) string {
	return `INSERT INTO declarations(` + declCols + `) VALUES ` + tuples(n, 11) +
		` ON CONFLICT(declarant, idem_key) DO NOTHING`
}

// bumpVersionsSQL raises n communes' versions, each by its own amount.
func bumpVersionsSQL(n int) string {
	return `INSERT INTO commune_versions(commune, version) VALUES ` + tuples(n, 2) +
		` ON CONFLICT(commune) DO UPDATE SET version = version + excluded.version RETURNING commune, version`
}

func insertRevsSQL(n int) string {
	return `INSERT INTO declaration_revisions(declaration_id, revision, day, place, count, note, reason, actor, actor_label, at) VALUES ` +
		tuples(n, 10)
}

// tuples returns n "(?,?,…)" groups of width parameters.
func tuples(n, width int) string {
	one := "(" + strings.TrimSuffix(strings.Repeat("?,", width), ",") + ")"
	return strings.TrimSuffix(strings.Repeat(one+",", n), ",")
}

// pieces calls f with the sizes of the prepared statements that add up to
// n (at most insertChunk), largest first, as indexes k of size 1<<k, and
// the offset of each piece.
func pieces(n int, f func(k, off int) error) error {
	off := 0
	for k := insertSizes - 1; k >= 0; k-- {
		if n&(1<<k) != 0 {
			if err := f(k, off); err != nil {
				return err
			}
			off += 1 << k
		}
	}
	return nil
}

// insertRun stores up to insertChunk consecutive inserts in a few
// statements, with the same results as one by one in order: a key already
// used by the declarant (before or earlier in the run) yields the original,
// and each commune's version rises by one per new declaration.
//
// A new declaration's revision 1 is its row itself, unchanged until a first
// amendment copies it into declaration_revisions (see amendDecl and
// Revisions): intake writes one row per declaration, not two.
func insertRun(ctx context.Context, b *batch, ops []declarations.Op, res []declarations.OpResult) error {
	var stored int64
	err := pieces(len(ops), func(k, off int) error {
		args := b.args[:0]
		for _, op := range ops[off : off+1<<k] {
			in := op.Insert
			args = append(args, in.ID, in.Commune, in.Date, in.Place, int64(in.Count), in.Note, in.IdempotencyKey, in.Declarant,
				in.DeclarantLabel, ms(in.CreatedAt), int64(in.Revision))
		}
		b.args = args
		r, err := b.tx.StmtContext(ctx, b.st.insertDecls[k]).ExecContext(ctx, args...)
		if err != nil {
			return err
		}
		n, err := r.RowsAffected()
		stored += n
		return err
	})
	if err != nil {
		return err
	}
	if stored == int64(len(ops)) {
		for i, op := range ops {
			res[i] = declarations.OpResult{Decl: *op.Insert}
		}
	} else if err := sortOutConflicts(ctx, b, ops, res); err != nil {
		return err
	}
	return assignVersions(ctx, b, res)
}

// sortOutConflicts tells the ops that went in from those whose key was
// taken, by reading each key's row: it is the op's own when its insert
// won. Rare (a retried send), so one read per op is fine.
func sortOutConflicts(ctx context.Context, b *batch, ops []declarations.Op, res []declarations.OpResult) error {
	if b.declByKey == nil {
		b.declByKey = b.tx.StmtContext(ctx, b.st.declByKey)
	}
	for i, op := range ops {
		in := op.Insert
		row, err := scanDecl(b.declByKey.QueryRowContext(ctx, in.Declarant, in.IdempotencyKey))
		if err != nil {
			return fmt.Errorf("idempotency key %q: %w", in.IdempotencyKey, err)
		}
		res[i] = declarations.OpResult{Decl: row, Existed: row.ID != in.ID}
	}
	return nil
}

// assignVersions raises each commune's version once by its number of new
// declarations (one statement for all the communes of a run) and hands the
// versions out in op order.
func assignVersions(ctx context.Context, b *batch, res []declarations.OpResult) error {
	counts := make(map[string]int64, len(res))
	order := make([]string, 0, len(res))
	for _, r := range res {
		if r.Existed {
			continue
		}
		if counts[r.Decl.Commune] == 0 {
			order = append(order, r.Decl.Commune)
		}
		counts[r.Decl.Commune]++
	}
	if len(order) == 0 {
		return nil
	}
	last := make(map[string]int64, len(order))
	err := pieces(len(order), func(k, off int) error {
		args := b.args[:0]
		for _, c := range order[off : off+1<<k] {
			args = append(args, c, counts[c])
		}
		b.args = args
		return queryVersions(ctx, b.tx.StmtContext(ctx, b.st.bumpVersions[k]), last, args...)
	})
	if err != nil {
		return err
	}
	for _, c := range order { // the first version each commune hands out
		last[c] -= counts[c] - 1
	}
	for i := range res {
		if !res[i].Existed {
			c := res[i].Decl.Commune
			res[i].Version = last[c]
			last[c]++
		}
	}
	return nil
}

func amendDecl(ctx context.Context, b *batch, op declarations.AmendOp) (declarations.OpResult, error) {
	old, err := scanDecl(b.tx.QueryRowContext(ctx, `SELECT `+declCols+` FROM declarations WHERE id = ?`, op.ID))
	if errors.Is(err, sql.ErrNoRows) {
		return declarations.OpResult{Err: declarations.ErrNotFound}, nil
	}
	if err != nil {
		return declarations.OpResult{}, err
	}
	if !declarations.CanAmend(op.Actor, old) {
		return declarations.OpResult{Err: declarations.ErrForbidden}, nil
	}
	if old.Revision == 1 {
		// The first amendment keeps the declaration as it was received in
		// the audit trail before the row changes. Databases written before
		// intake stopped storing revision 1 already have it.
		if _, err := b.tx.ExecContext(ctx, insertRevsSQL(1)+` ON CONFLICT DO NOTHING`, old.ID, 1, old.Date, old.Place, old.Count,
			old.Note, declaredReason, old.Declarant, old.DeclarantLabel, ms(old.CreatedAt)); err != nil {
			return declarations.OpResult{}, err
		}
	}
	nd := declarations.ApplyAmendment(old, op.Amendment)
	if _, err := b.tx.ExecContext(ctx, `UPDATE declarations SET day = ?, place = ?, count = ?, note = ?, revision = ? WHERE id = ?`,
		nd.Date, nd.Place, nd.Count, nd.Note, nd.Revision, nd.ID); err != nil {
		return declarations.OpResult{}, err
	}
	if err := insertRevision(ctx, b, declarations.Revision{DeclarationID: nd.ID, Revision: nd.Revision, Date: nd.Date,
		Place: nd.Place, Count: nd.Count, Note: nd.Note, Reason: op.Amendment.Reason, Actor: op.Actor.ID,
		ActorLabel: op.Actor.Label, At: op.At}); err != nil {
		return declarations.OpResult{}, err
	}
	v, err := bumpVersion(ctx, b, nd.Commune, 1)
	return declarations.OpResult{Decl: nd, Version: v, Previous: &old}, err
}

func insertRevision(ctx context.Context, b *batch, r declarations.Revision) error {
	_, err := b.tx.StmtContext(ctx, b.st.insertRev).ExecContext(ctx,
		r.DeclarationID, r.Revision, r.Date, r.Place, r.Count, r.Note, r.Reason, r.Actor, r.ActorLabel, ms(r.At))
	return err
}

// bumpVersion raises a commune's version by n and returns the new one.
func bumpVersion(ctx context.Context, b *batch, commune string, n int64) (int64, error) {
	last := map[string]int64{}
	err := queryVersions(ctx, b.tx.StmtContext(ctx, b.st.bumpVersions[0]), last, commune, n)
	return last[commune], err
}

// queryVersions runs a version upsert … RETURNING commune, version.
func queryVersions(ctx context.Context, st *sql.Stmt, into map[string]int64, args ...any) error {
	rows, err := st.QueryContext(ctx, args...)
	if err != nil {
		return err
	}
	defer rows.Close()
	for rows.Next() {
		var c string
		var v int64
		if err := rows.Scan(&c, &v); err != nil {
			return err
		}
		into[c] = v
	}
	return rows.Err()
}

// Declaration implements declarations.Store.
func (d declStore) Declaration(ctx context.Context, id string) (declarations.Declaration, error) {
	decl, err := scanDecl(d.s.db.QueryRowContext(ctx, `SELECT `+declCols+` FROM declarations WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return decl, declarations.ErrNotFound
	}
	return decl, err
}

// declarationsQuery lists the declarations of one commune, or all ("").
func declarationsQuery(commune string) (string, []any) {
	q := `SELECT ` + declCols + ` FROM declarations`
	if commune == "" {
		return q + ` ORDER BY created_at, id`, nil
	}
	return q + ` WHERE commune = ? ORDER BY created_at, id`, []any{commune}
}

// Declarations implements declarations.Store.
func (d declStore) Declarations(ctx context.Context, commune string) ([]declarations.Declaration, error) {
	q, args := declarationsQuery(commune)
	rows, err := d.s.db.QueryContext(ctx, q, args...)
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

// declaredReason is the reason of every revision 1.
const declaredReason = "déclaration"

// Revisions implements declarations.Store. A declaration never amended has
// no row in declaration_revisions (see insertRun): its revision 1 is read
// from the declaration itself.
func (d declStore) Revisions(ctx context.Context, id string) ([]declarations.Revision, error) {
	rows, err := d.s.db.QueryContext(ctx, `SELECT declaration_id, revision, day, place, count, note, reason, actor, actor_label, at
		FROM declaration_revisions WHERE declaration_id = ?1
		UNION ALL
		SELECT id, 1, day, place, count, note, ?2, declarant, declarant_label, created_at FROM declarations
		WHERE id = ?1 AND revision = 1 AND NOT EXISTS (SELECT 1 FROM declaration_revisions WHERE declaration_id = ?1)
		ORDER BY 2`, id, declaredReason)
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
