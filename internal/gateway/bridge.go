package gateway

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/tracegate/tracegate/internal/backend"
	"github.com/tracegate/tracegate/internal/wire"
)

// A 2026-07-28 client takes no requests from its server: a server that
// needs input (sampling, elicitation, roots) answers the call with an
// input_required result, and the client calls again with inputResponses
// and the requestState it was given (SEP-2322). A stateful backend asks
// its client mid-call instead. The gateway bridges the two: it holds the
// backend's call open, gives the client an input_required result for each
// request the backend makes, and passes the client's answers back when it
// calls again.

// bridge is one held backend call.
type bridge struct {
	c    *call
	bs   *backend.Session
	done chan bridgeResult
	asks chan []byte // the backend's requests for the client, copied

	mu      sync.Mutex
	pending map[string][]byte // input key → the backend's request id
	expire  *time.Timer
}

type bridgeResult struct {
	resp wire.Message
	err  error
}

// maxBridges bounds the calls held for 2026-07-28 clients.
const maxBridges = 1024

// sendBridged is send for a 2026-07-28 client: a new call, or the
// continuation of a held one named by params.requestState.
func (rq *request) sendBridged(b *backend.Backend, bs *backend.Session, out backend.Request) ([]byte, error) {
	g := rq.g
	if state, ok := wire.GetString(rq.m.Params, "requestState"); ok && state != "" {
		br := g.flight.takeBridge(state)
		if br == nil {
			return nil, &wire.Error{Code: codeInvalidParams, Message: "requestState is unknown or expired"}
		}
		if err := br.answer(rq, wire.Get(rq.m.Params, "inputResponses")); err != nil {
			return nil, err
		}
		return rq.await(br)
	}
	g.flight.mu.Lock()
	n := len(g.flight.bridges)
	g.flight.mu.Unlock()
	if n >= maxBridges {
		return nil, &wire.Error{Code: CodeUnavailable, Message: "tracegate: too many calls are waiting for client input"}
	}
	// The backend's call outlives this HTTP request: the client's next
	// request continues it.
	held := *rq
	held.ctx = context.WithoutCancel(rq.ctx)
	c := g.flight.begin(&held, bs)
	br := &bridge{c: c, bs: bs, done: make(chan bridgeResult, 1), asks: make(chan []byte, 8), pending: map[string][]byte{}}
	c.bridge = br
	out.ID = c.backendID
	out.Meta = c.backendMeta()
	out.Related = func(msg []byte) { g.relay(bs, msg, c) }
	go func() {
		ctx, cancel := context.WithTimeout(c.ctx, b.Timeout())
		defer cancel()
		resp, err := bs.Send(ctx, out)
		if err != nil && errors.Is(ctx.Err(), context.DeadlineExceeded) {
			c.abandon(c.ctx, fmt.Sprintf("timed out at the gateway after %s", b.Timeout()))
			err = &wire.Error{Code: CodeTimeout, Message: fmt.Sprintf("backend %q did not answer within %s", b.Name(), b.Timeout())}
		} else if err != nil && c.ctx.Err() == nil {
			err = &wire.Error{Code: CodeUnavailable, Message: fmt.Sprintf("backend %q failed: %s", b.Name(), failureKind(err))}
		}
		g.flight.end(c)
		br.done <- bridgeResult{resp, err}
	}()
	return rq.await(br)
}

// await waits for the held call's result, or for the backend's next
// request for input, which becomes an input_required result.
func (rq *request) await(br *bridge) ([]byte, error) {
	select {
	case r := <-br.done:
		if r.err != nil {
			return nil, r.err
		}
		if r.resp.Error != nil {
			return nil, wire.DecodeError(r.resp.Error)
		}
		return r.resp.Result, nil
	case ask := <-br.asks:
		inputs := []byte(`{`)
		inputs = br.add(inputs, ask)
		for more := true; more; {
			select {
			case a := <-br.asks:
				inputs = br.add(append(inputs, ','), a)
			default:
				more = false
			}
		}
		inputs = append(inputs, '}')
		token := rq.g.flight.holdBridge(br, br.c.bs.Backend().Timeout())
		out := []byte(`{"resultType":"input_required","inputRequests":`)
		out = append(out, inputs...)
		out = append(out, `,"requestState":`...)
		out = wire.AppendString(out, token)
		return append(out, '}'), nil
	case <-rq.ctx.Done():
		// The client abandoned its request (SEP-2575's cancellation).
		br.c.cancel(cancelReason("the client abandoned the request"))
		br.c.abandon(br.c.ctx, br.c.reason())
		return nil, rq.ctx.Err()
	}
}

// add appends one input request, keyed by a fresh key, and remembers the
// backend's id under it.
func (br *bridge) add(dst, ask []byte) []byte {
	m, err := wire.Parse(ask)
	if err != nil {
		return dst
	}
	br.mu.Lock()
	key := "in-" + strconv.Itoa(len(br.pending)+1)
	br.pending[key] = m.ID
	br.mu.Unlock()
	dst = wire.AppendString(dst, key)
	dst = append(dst, `:{"method":`...)
	dst = wire.AppendString(dst, m.Method)
	if m.Params != nil {
		dst = append(dst, `,"params":`...)
		dst = append(dst, m.Params...)
	}
	return append(dst, '}')
}

// answer passes the client's inputResponses to the backend, each as the
// response to the request it answers.
func (br *bridge) answer(rq *request, responses []byte) error {
	br.mu.Lock()
	pending := br.pending
	br.pending = map[string][]byte{}
	br.mu.Unlock()
	for key, id := range pending {
		resp := wire.Get(responses, key)
		var msg []byte
		if resp == nil || resp[0] != '{' {
			msg = wire.AppendError(nil, id, codeInvalidParams, "the client gave no answer for "+key, nil)
		} else {
			msg = wire.AppendResponse(nil, id, resp)
		}
		ctx, cancel := context.WithTimeout(rq.ctx, br.bs.Backend().Timeout())
		err := br.bs.Forward(ctx, msg)
		cancel()
		if err != nil {
			return &wire.Error{Code: CodeUnavailable, Message: fmt.Sprintf("backend %q failed: %s", br.bs.Backend().Name(), failureKind(err))}
		}
	}
	return nil
}

// holdBridge files br under a fresh requestState token until the client
// calls again, or timeout passes and the backend's call is given up.
func (fl *flight) holdBridge(br *bridge, timeout time.Duration) string {
	var b [16]byte
	rand.Read(b[:])
	token := hex.EncodeToString(b[:])
	fl.mu.Lock()
	fl.bridges[token] = br
	fl.mu.Unlock()
	br.expire = time.AfterFunc(timeout, func() {
		if fl.takeBridge(token) != nil {
			br.c.cancel(cancelReason("the client did not answer in time"))
			br.c.abandon(br.c.ctx, br.c.reason())
		}
	})
	return token
}

func (fl *flight) takeBridge(token string) *bridge {
	fl.mu.Lock()
	br := fl.bridges[token]
	delete(fl.bridges, token)
	fl.mu.Unlock()
	if br != nil && br.expire != nil {
		br.expire.Stop()
	}
	return br
}
