package store

import (
	"context"
	"testing"
	"time"
)

func TestNotify(t *testing.T) {
	s := openTest(t, testConfig(t), options{})
	ctx := context.Background()

	ch := s.Notify()
	select {
	case <-ch:
		t.Fatal("Notify channel closed before any append")
	default:
	}
	if got, _, err := s.ReadFrom(Cursor{}, 10); err != nil || len(got) != 0 {
		t.Fatalf("ReadFrom on an empty store: %d samples, %v", len(got), err)
	}
	now := time.Now()
	if err := s.Append(ctx, []Sample{gpuSample("0", now, 1)}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("Notify channel still open after Append returned")
	}
	// The woken reader sees the sample.
	if got, _, err := s.ReadFrom(Cursor{}, 10); err != nil || len(got) != 1 {
		t.Fatalf("ReadFrom after wake: %d samples, %v", len(got), err)
	}

	// A fresh channel waits for the next commit; a saved cursor is not an
	// append and does not wake it.
	ch = s.Notify()
	if err := s.SaveCursor(ctx, "c", Cursor{Seq: 1}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
		t.Fatal("SaveCursor woke Notify")
	default:
	}
	// Close wakes waiters so they need no second way out.
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-ch:
	default:
		t.Fatal("Close did not wake Notify")
	}
}
