// Package static embeds the browser front end into the binary.
package static

import "embed"

// Files is the front end: the pages, the ES modules they load, and
// vendor/, where `npm run build` copies third-party libraries from
// node_modules (pinned by package-lock.json, never committed). all: keeps
// vendor/.keep so the package builds before the first npm run.
//
//go:embed *.html css js all:vendor
var Files embed.FS
