package access

import (
	"fmt"
	"slices"
	"strings"
)

// MatrixMarkdown renders the matrix as the Markdown table of
// docs/access.md (a test keeps the document equal to the code).
func MatrixMarkdown() string {
	var b strings.Builder
	b.WriteString("| action |")
	for _, r := range Roles {
		fmt.Fprintf(&b, " %s |", r)
	}
	b.WriteString("\n|---|")
	for range Roles {
		b.WriteString("---|")
	}
	b.WriteString("\n")
	acts := make([]Action, 0, len(matrix))
	for a := range matrix {
		acts = append(acts, a)
	}
	slices.Sort(acts)
	for _, a := range acts {
		fmt.Fprintf(&b, "| `%s` |", a)
		for _, r := range Roles {
			mark := " "
			if slices.Contains(matrix[a], r) {
				mark = "✓"
				if r == Guest && slices.Contains(watchOnlyDenied, a) {
					mark = "✓ (not watch-only)"
				}
			}
			fmt.Fprintf(&b, " %s |", mark)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// RoutesMarkdown renders the route table of docs/access.md.
func RoutesMarkdown() string {
	keys := RouteKeys()
	slices.SortFunc(keys, func(x, y string) int {
		_, px, _ := strings.Cut(x, " ")
		_, py, _ := strings.Cut(y, " ")
		return strings.Compare(px+" "+x, py+" "+y)
	})
	scope := map[Scope]string{ScopeNone: "—", ScopeEvent: "the event {slug}", ScopeTerritory: "the territory (event main)"}
	var b strings.Builder
	b.WriteString("| route | action | acts in |\n|---|---|---|\n")
	for _, k := range keys {
		r := routes[k]
		fmt.Fprintf(&b, "| `%s` | `%s` | %s |\n", k, r.Action, scope[r.Scope])
	}
	b.WriteString("\n| WebSocket message | action |\n|---|---|\n")
	for _, k := range MessageKeys() {
		fmt.Fprintf(&b, "| `%s` | `%s` |\n", k, messages[k])
	}
	return b.String()
}
