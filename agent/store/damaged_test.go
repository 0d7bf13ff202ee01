package store

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// A damaged data page is not read at Open (only the index is), so it shows
// up later: in a query, or when retention drops its partition. Neither may
// panic: the second would crash the agent at every start.
func TestDamagedDataPage(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	cfg := testConfig(t)
	cfg.Partition = 10 * time.Minute
	s := openTest(t, cfg, options{now: func() time.Time { return now }})
	for m := 0; m < 30; m++ {
		batch := make([]Sample, 2000)
		for i := range batch {
			batch[i] = Sample{Name: "m", Labels: Labels{{"i", fmt.Sprint(i % 100)}}, Time: now.Add(-time.Hour + time.Duration(m)*time.Minute + time.Duration(i)*time.Millisecond), Value: float64(m)}
		}
		if err := s.Append(ctx, batch); err != nil {
			t.Fatal(err)
		}
	}
	s.Close()

	// Overwrite the header (flags, count) of the oldest partition's root page.
	db, err := bolt.Open(cfg.Path, 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	var root int64
	_ = db.View(func(tx *bolt.Tx) error {
		parts := tx.Bucket(bucketParts)
		k, _ := parts.Cursor().First()
		root = int64(parts.Bucket(k).RootPage())
		return nil
	})
	pageSize := int64(db.Info().PageSize)
	db.Close()
	if root == 0 {
		t.Fatal("oldest partition is inline; the test needs it on its own page")
	}
	f, err := os.OpenFile(cfg.Path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte(strings.Repeat("\xab", 8)), root*pageSize+8); err != nil {
		t.Fatal(err)
	}
	f.Close()

	// Two days later every partition is due for retention.
	later := now.Add(48 * time.Hour)
	var logs logBuf
	s2, err := open(cfg, slog.New(slog.NewTextHandler(&logs, nil)), options{now: func() time.Time { return later }})
	if err != nil {
		t.Fatalf("open: %v", err)
	}
	if !strings.Contains(logs.String(), "level=ERROR") || !strings.Contains(logs.String(), "check_on_open") {
		t.Errorf("damaged file not logged at ERROR with the way out:\n%s", logs.String())
	}
	_, err = s2.Query(ctx, QueryRequest{Name: "m", Start: now.Add(-2 * time.Hour), End: now})
	if err == nil || !strings.Contains(err.Error(), "damaged") || !strings.Contains(err.Error(), "check_on_open") {
		t.Errorf("query over the damaged page: err %v, want one saying the file is damaged and what to do", err)
	}
	s2.Close()

	// The way out the messages give works.
	cfg.CheckOnOpen = true
	s3 := openTest(t, cfg, options{})
	if m, _ := filepath.Glob(cfg.Path + ".corrupt-*"); len(m) != 1 {
		t.Fatalf("check_on_open did not move the damaged file aside: %v", m)
	}
	if err := s3.Append(ctx, []Sample{gpuSample("0", time.Now(), 1)}); err != nil {
		t.Fatal(err)
	}
}
