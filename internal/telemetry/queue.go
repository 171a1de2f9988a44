package telemetry

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"

	"github.com/tracegate/tracegate/internal/redact"
)

// queueConfig sizes a queueProcessor. Defaults follow the OTEL_BSP_*
// variables of the SDK configuration spec.
type queueConfig struct {
	QueueSize     int           // OTEL_BSP_MAX_QUEUE_SIZE, default 2048
	BatchSize     int           // OTEL_BSP_MAX_EXPORT_BATCH_SIZE, default 512
	Interval      time.Duration // OTEL_BSP_SCHEDULE_DELAY, default 5s
	ExportTimeout time.Duration // OTEL_BSP_EXPORT_TIMEOUT, default 30s
	// Limits, when set, bound each span before it is exported.
	Limits *Limits
	// Redactor cleans export errors before they are logged: they quote the
	// endpoint URL, which may carry credentials.
	Redactor *redact.Redactor
}

func queueConfigFromEnv(e env) (queueConfig, error) {
	c := queueConfig{QueueSize: 2048, BatchSize: 512, Interval: 5 * time.Second, ExportTimeout: 30 * time.Second}
	var err error
	if c.QueueSize, err = e.positiveInt("OTEL_BSP_MAX_QUEUE_SIZE", c.QueueSize); err != nil {
		return c, err
	}
	if c.BatchSize, err = e.positiveInt("OTEL_BSP_MAX_EXPORT_BATCH_SIZE", c.BatchSize); err != nil {
		return c, err
	}
	// The spec: a batch size above the queue size is clamped to it.
	c.BatchSize = min(c.BatchSize, c.QueueSize)
	if d, ok, err := e.millis("OTEL_BSP_SCHEDULE_DELAY"); err != nil {
		return c, err
	} else if ok && d > 0 {
		c.Interval = d
	}
	if d, ok, err := e.millis("OTEL_BSP_EXPORT_TIMEOUT"); err != nil {
		return c, err
	} else if ok && d > 0 {
		c.ExportTimeout = d
	}
	return c, nil
}

// queueProcessor is a batching span processor that never makes OnEnd wait:
// a span that finds the queue full is dropped and counted, as is a batch
// the exporter fails to take. One goroutine exports, each batch under
// ExportTimeout, so a hanging collector holds at most one batch.
//
// The goroutine is woken once per batch, not once per span: OnEnd only
// puts the span in the buffered queue, and kicks the goroutine when a full
// batch is waiting; the interval's tick takes the rest. A wake-up per span
// cost the request path a scheduler round trip for every span it ended.
type queueProcessor struct {
	cfg      queueConfig
	exporter sdktrace.SpanExporter
	logger   *slog.Logger

	queue   chan sdktrace.ReadOnlySpan
	kick    chan struct{} // a full batch is queued
	stopped atomic.Bool

	droppedFull     atomic.Int64 // queue full
	droppedExport   atomic.Int64 // the exporter returned an error
	droppedShutdown atomic.Int64 // still queued when Shutdown ran out of time
	exporting       atomic.Int64 // spans in the export under way

	flush    chan chan struct{}
	stop     chan struct{}
	done     chan struct{}
	stopOnce sync.Once
	// abort cancels an export in progress when Shutdown runs out of time.
	abortCtx context.Context
	abort    context.CancelFunc
}

var _ sdktrace.SpanProcessor = (*queueProcessor)(nil)

func newQueueProcessor(exp sdktrace.SpanExporter, cfg queueConfig, logger *slog.Logger) *queueProcessor {
	p := &queueProcessor{
		cfg:      cfg,
		exporter: exp,
		logger:   logger,
		queue:    make(chan sdktrace.ReadOnlySpan, cfg.QueueSize),
		kick:     make(chan struct{}, 1),
		flush:    make(chan chan struct{}),
		stop:     make(chan struct{}),
		done:     make(chan struct{}),
	}
	p.abortCtx, p.abort = context.WithCancel(context.Background())
	go p.run()
	return p
}

// OnStart does nothing: only ended spans are exported.
func (p *queueProcessor) OnStart(context.Context, sdktrace.ReadWriteSpan) {}

// OnEnd queues the span, or drops it if the queue is full. It never blocks.
func (p *queueProcessor) OnEnd(s sdktrace.ReadOnlySpan) {
	if p.stopped.Load() || !s.SpanContext().IsSampled() {
		return
	}
	select {
	case p.queue <- s:
		if len(p.queue) >= p.cfg.BatchSize {
			select {
			case p.kick <- struct{}{}:
			default: // already kicked
			}
		}
	default:
		p.droppedFull.Add(1)
	}
}

// Dropped is the number of spans lost so far, for any reason.
func (p *queueProcessor) Dropped() int64 {
	return p.droppedFull.Load() + p.droppedExport.Load() + p.droppedShutdown.Load()
}

// ForceFlush exports everything queued before it returns, or returns
// ctx's error.
func (p *queueProcessor) ForceFlush(ctx context.Context) error {
	if p.stopped.Load() {
		return nil
	}
	reply := make(chan struct{})
	select {
	case p.flush <- reply:
	case <-p.done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
	select {
	case <-reply:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// abortGrace is how long Shutdown, out of time, lets the worker fail its
// remaining batches at once (their context is cancelled), so that they are
// counted as lost; after it, what is left is counted without waiting.
const abortGrace = 250 * time.Millisecond

// Shutdown exports what is queued, then shuts the exporter down. When ctx
// ends first, the export in progress is abandoned, and every span not
// exported is counted as dropped. Later calls return nil.
func (p *queueProcessor) Shutdown(ctx context.Context) error {
	var err error
	p.stopOnce.Do(func() {
		p.stopped.Store(true)
		close(p.stop)
		select {
		case <-p.done:
		case <-ctx.Done():
			p.abort()
			err = fmt.Errorf("flush spans: %w", context.Cause(ctx))
			t := time.NewTimer(abortGrace)
			select {
			case <-p.done:
			case <-t.C:
				// An exporter that ignores its context: count what it
				// holds and what is queued as lost, and go.
				p.droppedShutdown.Add(int64(len(p.queue)) + p.exporting.Load())
			}
			t.Stop()
		}
		if serr := p.exporter.Shutdown(ctx); serr != nil {
			err = errors.Join(err, fmt.Errorf("shut down span exporter: %w", serr))
		}
	})
	return err
}

// maxBackoff caps the pause after failed exports.
const maxBackoff = time.Minute

func (p *queueProcessor) run() {
	defer close(p.done)
	defer p.abort()
	ticker := time.NewTicker(p.cfg.Interval)
	defer ticker.Stop()
	batch := make([]sdktrace.ReadOnlySpan, 0, p.cfg.BatchSize)
	health := exportHealth{redactor: p.cfg.Redactor}

	// After a failed export the worker pauses, doubling from Interval up
	// to maxBackoff, and stops taking spans from the queue meanwhile: they
	// are dropped at OnEnd's cost instead of being encoded and sent to a
	// collector that refuses them at once.
	var (
		backoff time.Duration
		pause   = time.NewTimer(time.Hour)
		paused  bool
	)
	pause.Stop()
	defer pause.Stop()

	export := func() {
		if len(batch) == 0 {
			return
		}
		if l := p.cfg.Limits; l != nil {
			for i, s := range batch {
				batch[i] = l.bound(s)
			}
		}
		ctx, cancel := context.WithTimeout(p.abortCtx, p.cfg.ExportTimeout)
		p.exporting.Store(int64(len(batch)))
		err := p.exporter.ExportSpans(ctx, batch)
		p.exporting.Store(0)
		cancel()
		if err != nil {
			p.droppedExport.Add(int64(len(batch)))
			backoff = min(max(2*backoff, p.cfg.Interval), maxBackoff)
			pause.Reset(backoff)
			paused = true
		} else {
			backoff = 0
		}
		health.report(p.logger, "span", err, "batch", len(batch), "dropped_spans_total", p.Dropped())
		clear(batch) // let the spans be collected
		batch = batch[:0]
	}
	// take exports n queued spans, in batches. Callers pass at most what
	// is queued now, not what arrives meanwhile, so a busy process cannot
	// keep the worker from its other cases.
	take := func(n int) {
		for ; n > 0; n-- {
			batch = append(batch, <-p.queue)
			if len(batch) == p.cfg.BatchSize {
				export()
			}
		}
	}
	// full exports the full batches queued now, and stops at a failed
	// export: the pause that follows is the collector's backoff.
	full := func() {
		for n := len(p.queue) / p.cfg.BatchSize; n > 0 && !paused; n-- {
			take(p.cfg.BatchSize)
		}
	}
	// drain exports everything queued now. It runs even while paused: a
	// flush or a shutdown asks to try now.
	drain := func() {
		take(len(p.queue))
		export()
	}
	for {
		select {
		case <-p.kick:
			if !paused {
				full()
			}
		case <-ticker.C:
			if !paused {
				drain()
			}
		case <-pause.C:
			paused = false
			full()
		case reply := <-p.flush:
			drain()
			close(reply)
		case <-p.stop:
			drain()
			return
		}
	}
}

// exportHealth logs when an export starts failing and when it recovers,
// and in between at most once a minute, so that a dead collector does not
// flood the log.
type exportHealth struct {
	redactor *redact.Redactor // nil redacts without configured secrets

	mu      sync.Mutex
	failing bool
	lastLog time.Time
}

func (h *exportHealth) report(logger *slog.Logger, signal string, err error, attrs ...any) {
	h.mu.Lock()
	defer h.mu.Unlock()
	now := time.Now()
	switch {
	case err == nil && h.failing:
		h.failing = false
		logger.Info(signal+" export recovered", attrs...)
	case err != nil && (!h.failing || now.Sub(h.lastLog) >= time.Minute):
		h.failing, h.lastLog = true, now
		logger.Warn(signal+" export failed", append([]any{"error", h.redactor.Error(err)}, attrs...)...)
	}
}
