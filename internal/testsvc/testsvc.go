// Package testsvc starts throwaway servers for tests of the cluster back
// ends: a redis-server and a PostgreSQL cluster (initdb into the test's temp
// dir), each on a free loopback port, stopped at cleanup, with Stop, Start
// and Restart for fault tests. The processes themselves are run by
// internal/localsvc, which the fanout bench shares.
//
// A missing binary fails the test: the back end would go untested, which
// must not pass silently. If a server cannot be started for an
// environmental reason (initdb refused, start-up timeout…), the machine's
// own service (127.0.0.1:6379, 127.0.0.1:5432 database test) is used
// instead, and the log says so; such a shared server cannot be stopped, so
// fault tests fail on it.
package testsvc

import (
	"context"
	"errors"
	"time"
)

// errExternal is what Stop and Start report on a machine service.
var errExternal = errors.New("this is the machine's shared service (the throwaway server did not start): it cannot be stopped by a test")

// ctxTimeout is a short context for set-up queries.
func ctxTimeout() (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), 15*time.Second)
}
