package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"fjord/internal/store"
	"fjord/internal/store/sqlite"
	"fjord/internal/store/storetest"
)

func TestAccounts(t *testing.T) {
	storetest.Accounts(t, func(t *testing.T) store.AccountStore {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "accounts.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestReopenKeepsData(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "accounts.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddSite(ctx, store.Site{Domain: "a.example", TimeZone: "UTC"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path) // migrations must not re-run
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.SiteByDomain(ctx, "a.example"); err != nil {
		t.Fatal(err)
	}
}

func TestHealth(t *testing.T) {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "accounts.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	storetest.Health(t, s, s.DB, s.Schema)
}
