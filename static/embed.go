// Package static embeds the browser front end into the binary.
package static

import "embed"

// Files is the front end: index.html and the ES modules it loads.
//
//go:embed index.html css js
var Files embed.FS
