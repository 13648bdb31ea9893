package sqlite

import (
	"testing"

	"crisisroom/declarations"
	"crisisroom/declarations/declarationstest"
)

func TestDeclarationsConformance(t *testing.T) {
	declarationstest.Run(t, func(t *testing.T) declarations.Store { return open(t).Declarations() })
}
