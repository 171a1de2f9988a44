package plugin

import (
	"context"
	"sync"
	"time"
)

// pluginContext bounds one plugin run. Unlike context.WithTimeout it arms
// no timer until the plugin asks for Done: most plugins never block, and a
// timer per plugin run was most of the chain's cost. Err and Deadline
// answer from the clock, so a plugin polling Err still sees its deadline.
//
// context.Cause on it reports the request's cause, not the plugin's
// deadline: Cause only knows the standard library's own contexts.
type pluginContext struct {
	context.Context // the request
	deadline        time.Time

	mu         sync.Mutex
	done       chan struct{} // made by the first Done
	err        error         // set once, when done
	timer      *time.Timer   // armed by Done
	stopParent func() bool   // armed by Done
}

func newPluginContext(parent context.Context, timeout time.Duration) *pluginContext {
	d := time.Now().Add(timeout)
	if pd, ok := parent.Deadline(); ok && pd.Before(d) {
		d = pd
	}
	return &pluginContext{Context: parent, deadline: d}
}

func (c *pluginContext) Deadline() (time.Time, bool) { return c.deadline, true }

func (c *pluginContext) Done() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.done != nil {
		return c.done
	}
	c.done = make(chan struct{})
	if c.err != nil {
		close(c.done)
		return c.done
	}
	if err := c.checkLocked(); err != nil {
		return c.done // checkLocked closed it
	}
	c.timer = time.AfterFunc(time.Until(c.deadline), func() { c.finish(context.DeadlineExceeded) })
	c.stopParent = context.AfterFunc(c.Context, func() { c.finish(c.Context.Err()) })
	return c.done
}

func (c *pluginContext) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checkLocked()
}

// checkLocked returns the error, first noticing a cancelled request or a
// passed deadline, so that Err never goes back to nil.
func (c *pluginContext) checkLocked() error {
	if c.err == nil {
		if err := c.Context.Err(); err != nil {
			c.finishLocked(err)
		} else if !time.Now().Before(c.deadline) {
			c.finishLocked(context.DeadlineExceeded)
		}
	}
	return c.err
}

func (c *pluginContext) finish(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err == nil {
		c.finishLocked(err)
	}
}

func (c *pluginContext) finishLocked(err error) {
	c.err = err
	if c.done != nil {
		close(c.done)
	}
	if c.timer != nil {
		c.timer.Stop()
	}
	if c.stopParent != nil {
		c.stopParent()
	}
}

// release ends the run, like the cancel func of context.WithTimeout, and
// reports whether the plugin's time had run out by then.
func (c *pluginContext) release() (late bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	late = c.checkLocked() != nil
	if c.err == nil {
		c.finishLocked(context.Canceled)
	}
	return late
}
