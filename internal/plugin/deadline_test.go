package plugin

import (
	"context"
	"errors"
	"testing"
	"time"
)

func TestPluginContext(t *testing.T) {
	t.Parallel()
	t.Run("polling sees the deadline without Done", func(t *testing.T) {
		t.Parallel()
		c := newPluginContext(context.Background(), 10*time.Millisecond)
		if err := c.Err(); err != nil {
			t.Fatalf("Err before the deadline = %v, want nil", err)
		}
		for c.Err() == nil {
			time.Sleep(time.Millisecond)
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Errorf("Err = %v, want DeadlineExceeded", c.Err())
		}
		select {
		case <-c.Done():
		default:
			t.Errorf("Done not closed after Err reported the deadline")
		}
		if !c.release() {
			t.Errorf("release = false, want late")
		}
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Errorf("Err after release = %v, want it unchanged", c.Err())
		}
	})
	t.Run("Done closes at the deadline", func(t *testing.T) {
		t.Parallel()
		c := newPluginContext(context.Background(), 10*time.Millisecond)
		<-c.Done()
		if !errors.Is(c.Err(), context.DeadlineExceeded) {
			t.Errorf("Err = %v, want DeadlineExceeded", c.Err())
		}
	})
	t.Run("the request's cancellation", func(t *testing.T) {
		t.Parallel()
		parent, cancel := context.WithCancel(context.Background())
		c := newPluginContext(parent, time.Hour)
		done := c.Done()
		cancel()
		<-done
		if !errors.Is(c.Err(), context.Canceled) {
			t.Errorf("Err = %v, want Canceled", c.Err())
		}
	})
	t.Run("the request's earlier deadline", func(t *testing.T) {
		t.Parallel()
		parent, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		want, _ := parent.Deadline()
		if got, ok := newPluginContext(parent, time.Hour).Deadline(); !ok || !got.Equal(want) {
			t.Errorf("Deadline = %v, want the request's %v", got, want)
		}
	})
	t.Run("release in time", func(t *testing.T) {
		t.Parallel()
		c := newPluginContext(context.Background(), time.Hour)
		c.Done() // arms the timer, which release must stop
		if c.release() {
			t.Errorf("release = true, want in time")
		}
		if !errors.Is(c.Err(), context.Canceled) {
			t.Errorf("Err after release = %v, want Canceled", c.Err())
		}
		<-c.Done()
		if c.timer.Stop() {
			t.Errorf("timer still armed after release")
		}
	})
	t.Run("children", func(t *testing.T) {
		t.Parallel()
		c := newPluginContext(context.Background(), 10*time.Millisecond)
		child, cancel := context.WithCancel(context.WithValue(c, ctxKey{}, 1))
		defer cancel()
		<-child.Done()
		if !errors.Is(child.Err(), context.DeadlineExceeded) {
			t.Errorf("child Err = %v, want DeadlineExceeded", child.Err())
		}
	})
}

type ctxKey struct{}
