package backup_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"fjord/internal/backup"
)

// TestRetentionYear: a backup every day of 2026 at 02:00 UTC, pruned
// after each (7:4:12), with the drill of 30 November failed, leaves
// exactly the last 7 days, the newest of each of the last 4 ISO weeks
// and of each of the last 12 months (November's being the 29th).
func TestRetentionYear(t *testing.T) {
	keep := backup.Keep{Daily: 7, Weekly: 4, Monthly: 12}
	var have []backup.Entry
	for day := time.Date(2026, 1, 1, 2, 0, 0, 0, time.UTC); day.Year() == 2026; day = day.AddDate(0, 0, 1) {
		e := backup.Entry{Manifest: backup.Manifest{ID: backup.NewID(day), Created: day}}
		e.Drill = &backup.Drill{OK: !(day.Month() == time.November && day.Day() == 30)}
		have = append(have, e)
		del := backup.Prune(have, keep, day.Add(time.Hour))
		have = slices.DeleteFunc(have, func(e backup.Entry) bool { return slices.Contains(del, e.ID) })
		if len(have) == 0 || have[len(have)-1].Created != day {
			t.Fatalf("%s: the newest backup was pruned", day.Format(time.DateOnly))
		}
	}
	var want []string
	for _, d := range []string{
		"2026-01-31", "2026-02-28", "2026-03-31", "2026-04-30", "2026-05-31", "2026-06-30", "2026-07-31", "2026-08-31", "2026-09-30", "2026-10-31",
		"2026-11-29",                             // November's newest good one (the 30th failed its drill)
		"2026-12-13", "2026-12-20", "2026-12-27", // ISO weeks 50, 51, 52; week 53 is Dec 28 - Jan 3
		"2026-12-25", "2026-12-26", "2026-12-28", "2026-12-29", "2026-12-30", "2026-12-31", // with the 27th, the last 7 days
	} {
		at, _ := time.Parse(time.DateOnly, d)
		want = append(want, backup.NewID(at.Add(2*time.Hour)))
	}
	slices.Sort(want)
	var got []string
	for _, e := range have {
		got = append(got, e.ID)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("kept %d backups:\n%v\nwant %d:\n%v", len(got), got, len(want), want)
	}

	// a failed drill is kept when it is the newest: never an empty target
	only := []backup.Entry{{Manifest: backup.Manifest{ID: "fjord-20261201T020000Z", Created: time.Date(2026, 12, 1, 2, 0, 0, 0, time.UTC)}, Drill: &backup.Drill{}}}
	if del := backup.Prune(only, backup.Keep{Daily: 1}, time.Date(2027, 6, 1, 0, 0, 0, 0, time.UTC)); len(del) != 0 {
		t.Fatalf("pruned the only backup: %v", del)
	}
	// an incomplete backup goes after a day
	broken := []backup.Entry{{Manifest: backup.Manifest{ID: "fjord-20261201T020000Z"}, Incomplete: true}}
	if del := backup.Prune(broken, keep, time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)); len(del) != 0 {
		t.Fatalf("an incomplete backup of this morning was pruned: %v", del)
	}
	if del := backup.Prune(broken, keep, time.Date(2026, 12, 3, 0, 0, 0, 0, time.UTC)); len(del) != 1 {
		t.Fatalf("an incomplete backup two days old was kept")
	}
}

// TestPruneKeepsWhatIsNotOurs: only backups' names are listed; a backup
// whose manifest does not read is never pruned; the newest good backup
// stays even when newer ones failed their drills.
func TestPruneKeepsWhatIsNotOurs(t *testing.T) {
	dir := t.TempDir()
	for _, d := range []string{"lost+found", "fjord-20260101T020000Z", "fjord-20260102T020000Z", "fjord-20260103T020000Z"} {
		os.MkdirAll(filepath.Join(dir, d), 0o700)
	}
	os.WriteFile(filepath.Join(dir, "fjord-20260102T020000Z", "manifest.json"), []byte(`{"format":2,"id":"fjord-20260102T020000Z"}`), 0o600)
	list, err := backup.List(backup.Dir(dir))
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 3 || list[0].ID != "fjord-20260101T020000Z" {
		t.Fatalf("list: %+v", list)
	}
	if list[1].Unreadable == "" || list[1].Incomplete {
		t.Fatalf("a manifest of another format: %+v", list[1])
	}
	del := backup.Prune(list, backup.Keep{Daily: 1}, time.Date(2026, 6, 1, 0, 0, 0, 0, time.UTC))
	if !slices.Equal(del, []string{"fjord-20260101T020000Z", "fjord-20260103T020000Z"}) {
		t.Fatalf("pruned %v: want only the two without a manifest", del)
	}

	at := func(d int) backup.Entry {
		c := time.Date(2026, 3, d, 2, 0, 0, 0, time.UTC)
		return backup.Entry{Manifest: backup.Manifest{ID: backup.NewID(c), Created: c}, Drill: &backup.Drill{OK: d == 1}}
	}
	del = backup.Prune([]backup.Entry{at(1), at(2), at(3)}, backup.Keep{Daily: 1}, time.Date(2026, 3, 3, 5, 0, 0, 0, time.UTC))
	if !slices.Equal(del, []string{at(2).ID}) {
		t.Fatalf("pruned %v: want only the failed one of 2 March (the 1st is the newest good, the 3rd the newest)", del)
	}
}
