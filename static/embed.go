// Package static embeds the browser front end into the binary.
package static

import "embed"

// Files is the front end: the pages, the ES modules they load, and
// vendor/, the third-party libraries `npm run build` copies from
// node_modules at the lock file's versions. vendor/ is committed, so that
// `go build` and `go install` alone give a complete binary
// (TestVendorMatchesLock keeps it equal to the lock's packages).
//
//go:embed *.html css js all:vendor
var Files embed.FS
