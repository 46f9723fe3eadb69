package postgres_test

import (
	"os"
	"testing"

	"github.com/voxanne/voxanne/internal/testdb"
)

func TestMain(m *testing.M) { os.Exit(testdb.Main(m)) }
