package cluster

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Forwarding: what must reach one particular replica goes to it as an
// HTTP POST to {advertise_url}/.tracegate/forward/{op}, authenticated
// with the cluster's key and carrying the trace context in its headers.
// The sender's tracegate.forward CLIENT span is the parent of the
// receiver's tracegate.forward SERVER span, so one request stays one
// trace across replicas.

// ForwardPath is where a replica receives forwards, on its MCP listener.
const ForwardPath = "/.tracegate/forward/"

const (
	headerKey    = "Tracegate-Forward-Key"
	headerSource = "Tracegate-Replica"
	// maxForwardBytes bounds a forward's body (a JSON-RPC message and a
	// session id).
	maxForwardBytes = 4 << 20
	// forwardTimeout bounds a forward when the caller's context has no
	// earlier deadline.
	forwardTimeout = 10 * time.Second
)

// Span attributes of forwards.
const (
	AttrTarget    = attribute.Key("tracegate.replica.target")
	AttrSource    = attribute.Key("tracegate.replica.source")
	AttrOperation = attribute.Key("tracegate.forward.operation")
)

// ErrRefused is returned by Forward when the other replica answered with
// an error status; the error's text is what it said.
var ErrRefused = errors.New("cluster: forward refused")

// forwarder holds the HTTP client of forwards.
type forwarder struct {
	c      *Cluster
	client *http.Client
}

func newForwarder(c *Cluster) *forwarder {
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 2 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConnsPerHost: 32,
		IdleConnTimeout:     90 * time.Second,
	}
	return &forwarder{c: c, client: &http.Client{Transport: tr}}
}

func (f *forwarder) close() { f.client.CloseIdleConnections() }

func (c *Cluster) sign(op string, body []byte) string {
	mac := hmac.New(sha256.New, c.key)
	mac.Write([]byte(op))
	mac.Write([]byte{0})
	mac.Write(body)
	return hex.EncodeToString(mac.Sum(nil))
}

// Forward sends op and its body to replica to, and returns its answer.
func (c *Cluster) Forward(ctx context.Context, to Member, op string, body []byte) ([]byte, error) {
	ctx, span := c.tracer.Start(ctx, "tracegate.forward", trace.WithSpanKind(trace.SpanKindClient),
		trace.WithAttributes(AttrTarget.String(to.ID), AttrOperation.String(op)))
	defer span.End()
	if u, err := url.Parse(to.URL); err == nil {
		host, port, _ := net.SplitHostPort(u.Host)
		if p, err := strconv.Atoi(port); err == nil {
			span.SetAttributes(attribute.String("server.address", host), attribute.Int("server.port", p))
		}
	}
	out, err := c.forward(ctx, to, op, body)
	if err != nil {
		span.SetStatus(codes.Error, err.Error())
		span.SetAttributes(attribute.String("error.type", errorType(err)))
	}
	return out, err
}

func errorType(err error) string {
	switch {
	case errors.Is(err, ErrRefused):
		return "refused"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	default:
		return "unreachable"
	}
}

func (c *Cluster) forward(ctx context.Context, to Member, op string, body []byte) ([]byte, error) {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, forwardTimeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, to.URL+ForwardPath+op, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(headerKey, c.sign(op, body))
	req.Header.Set(headerSource, c.self.ID)
	c.prop.Inject(ctx, propagation.HeaderCarrier(req.Header))
	resp, err := c.fw.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("forward %s to replica %s: %w", op, to.ID, err)
	}
	defer resp.Body.Close()
	out, err := io.ReadAll(io.LimitReader(resp.Body, maxForwardBytes))
	if err != nil {
		return nil, fmt.Errorf("forward %s to replica %s: %w", op, to.ID, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%w by replica %s: %s", ErrRefused, to.ID, bytes.TrimSpace(out))
	}
	return out, nil
}

// Broadcast forwards op to every other replica at once and waits for all
// of them (each bounded as Forward is). Replicas that fail are skipped:
// what is broadcast is for whoever holds the thing it names.
func (c *Cluster) Broadcast(ctx context.Context, op string, body []byte) {
	var wg sync.WaitGroup
	for _, m := range c.Members() {
		if m.ID == c.self.ID {
			continue
		}
		wg.Go(func() {
			if _, err := c.Forward(ctx, m, op, body); err != nil {
				c.log.Debug("cluster: forward failed", "op", op, "replica", m.ID, "error", err.Error())
			}
		})
	}
	wg.Wait()
}

// Handler serves forwards from other replicas with serve, inside a
// tracegate.forward SERVER span whose parent is the sender's span. An
// error from serve is answered with 404 and its text.
func (c *Cluster) Handler(serve func(ctx context.Context, op string, body []byte) ([]byte, error)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodPost {
			w.Header().Set("Allow", "POST")
			http.Error(w, "Method Not Allowed", http.StatusMethodNotAllowed)
			return
		}
		op := r.URL.Path[len(ForwardPath):]
		body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxForwardBytes))
		if err != nil {
			http.Error(w, "reading the forward: "+err.Error(), http.StatusBadRequest)
			return
		}
		got, err := hex.DecodeString(r.Header.Get(headerKey))
		want, _ := hex.DecodeString(c.sign(op, body))
		if err != nil || !hmac.Equal(got, want) {
			http.Error(w, "forward not authenticated: the replicas' cluster keys differ", http.StatusForbidden)
			return
		}
		ctx := c.prop.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
		source := r.Header.Get(headerSource)
		if len(source) > 16 {
			source = source[:16]
		}
		ctx, span := c.tracer.Start(ctx, "tracegate.forward", trace.WithSpanKind(trace.SpanKindServer),
			trace.WithAttributes(AttrSource.String(source), AttrOperation.String(op)))
		defer span.End()
		out, err := serve(ctx, op, body)
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		w.Write(out)
	})
}
