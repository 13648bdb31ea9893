package postgres

import (
	"context"
	"strings"
	"testing"
	"time"

	"crisisroom/access"
	"crisisroom/access/accesstest"
	"crisisroom/internal/testsvc"
)

// TestAccessOnPostgres runs the access conformance suite (the one
// store/sqlite runs) on a throwaway server, each subtest on a fresh schema.
func TestAccessOnPostgres(t *testing.T) {
	pg := testsvc.StartPostgres(t)
	fresh := func(t *testing.T) *Store { return open(t, pg.Schema(t)) }
	t.Run("Conformance", func(t *testing.T) {
		accesstest.Run(t, func(t *testing.T) access.Store { return fresh(t).Access() })
	})
	t.Run("AuditAppendOnlyInTheDatabase", func(t *testing.T) { auditAppendOnly(t, fresh(t)) })
}

// auditAppendOnly: even SQL that bypasses the store cannot rewrite, erase
// or truncate the access audit log.
func auditAppendOnly(t *testing.T, s *Store) {
	ctx := context.Background()
	if err := s.Access().Audit(ctx, access.AuditEntry{At: time.Now(), Actor: "alice", Action: "login"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE audit_log SET actor = 'mallory'`, `DELETE FROM audit_log`, `TRUNCATE audit_log`} {
		if _, err := s.pool.Exec(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", q, err)
		}
	}
	if got, err := s.Access().AuditLog(ctx, 0); err != nil || len(got) != 1 || got[0].Actor != "alice" {
		t.Fatalf("log after the attempts: %+v, %v", got, err)
	}
}
