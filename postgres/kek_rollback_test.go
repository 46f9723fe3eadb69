package postgres_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/voxanne/voxanne/internal/testdb"
	"github.com/voxanne/voxanne/postgres"
)

// The key-encryption key cannot be rolled back: once it has sealed the
// signing keys, a key ring without it, or with another one, refuses to load
// (docs/rollback.md), and the right one still loads them.
func TestSealedKeysNeedTheirKEK(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := testdb.New(t)
	const kek = "the-key-encryption-key-of-this-test"
	if err := postgres.NewKeyRing(db, kek, time.Hour).Load(ctx); err != nil {
		t.Fatal(err)
	}
	for secret, want := range map[string]string{
		"":                           "is encrypted: set VOXANNE_KEY_ENCRYPTION_KEY",
		"another-key-encryption-key": "cannot decrypt with VOXANNE_KEY_ENCRYPTION_KEY",
	} {
		if err := postgres.NewKeyRing(db, secret, time.Hour).Load(ctx); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("load with KEK %q: %v, want %q", secret, err, want)
		}
	}
	if err := postgres.NewKeyRing(db, kek, time.Hour).Load(ctx); err != nil {
		t.Errorf("load with the KEK again: %v", err)
	}
}
