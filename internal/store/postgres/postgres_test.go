package postgres_test

import (
	"context"
	"testing"

	"fjord/internal/store"
	"fjord/internal/store/postgres"
	"fjord/internal/store/sqlstore"
	"fjord/internal/store/storetest"
)

func TestAccounts(t *testing.T) {
	storetest.Accounts(t, func(t *testing.T) store.AccountStore {
		s, err := postgres.OpenAccounts(context.Background(), storetest.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestEvents(t *testing.T) {
	storetest.Events(t, func(t *testing.T) store.EventStore {
		s, err := postgres.OpenEvents(context.Background(), storetest.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestBothStoresInOneDatabase(t *testing.T) {
	ctx := context.Background()
	url := storetest.PostgresURL(t)
	a, err := postgres.OpenAccounts(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	e, err := postgres.OpenEvents(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	if _, err := postgres.OpenEvents(ctx, url); err != nil {
		t.Fatalf("reopen (migrations must be recorded per store): %v", err)
	}
}

func TestReports(t *testing.T) {
	storetest.Reports(t, func(t *testing.T) store.EventStore {
		s, err := postgres.OpenEvents(context.Background(), storetest.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s
	})
}

func TestLiveRollupsFailure(t *testing.T) {
	storetest.LiveRollupsFailure(t, func(t *testing.T) (store.EventStore, *sqlstore.EventReads) {
		s, err := postgres.OpenEvents(context.Background(), storetest.PostgresURL(t))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return s, &s.EventReads
	})
}

func TestHealth(t *testing.T) {
	ctx := context.Background()
	a, err := postgres.OpenAccounts(ctx, storetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	t.Run("accounts", func(t *testing.T) { storetest.Health(t, a, a.DB, a.Schema) })
	e, err := postgres.OpenEvents(ctx, storetest.PostgresURL(t))
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	t.Run("events", func(t *testing.T) { storetest.Health(t, e, e.DB, e.Schema) })
}
