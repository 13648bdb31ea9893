package sqlite

import (
	"context"
	"strings"
	"testing"
	"time"

	"crisisroom/access"
	"crisisroom/access/accesstest"
)

func TestAccessConformance(t *testing.T) {
	accesstest.Run(t, func(t *testing.T) access.Store { return open(t).Access() })
}

// TestAuditAppendOnlyInTheDatabase: even SQL that bypasses the store
// cannot rewrite or erase the access audit log.
func TestAuditAppendOnlyInTheDatabase(t *testing.T) {
	ctx := context.Background()
	s := open(t)
	if err := s.Access().Audit(ctx, access.AuditEntry{At: time.Now(), Actor: "alice", Action: "login"}); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{`UPDATE audit_log SET actor = 'mallory'`, `DELETE FROM audit_log`} {
		if _, err := s.db.ExecContext(ctx, q); err == nil || !strings.Contains(err.Error(), "append-only") {
			t.Errorf("%s: %v, want refused as append-only", q, err)
		}
	}
	if got, err := s.Access().AuditLog(ctx, 0); err != nil || len(got) != 1 || got[0].Actor != "alice" {
		t.Fatalf("log after the attempts: %+v, %v", got, err)
	}
}
