package auth

import (
	"context"
	"log/slog"

	"go.opentelemetry.io/otel/attribute"
)

// Attribute keys for the caller's identity, recorded only when the
// operator opts in (telemetry.capture_identity).
const (
	// AttrEndUserID is the OpenTelemetry semantic convention for the
	// authenticated user: [Identity.ID].
	AttrEndUserID = attribute.Key("enduser.id")
	// AttrClientID is the OAuth client the caller used, when it differs
	// from enduser.id.
	AttrClientID = attribute.Key("tracegate.auth.client_id")
)

// Attributes returns the span attributes naming the caller of ctx, or nil
// when there is none. They never include the token or its claims beyond
// the subject and client.
func Attributes(ctx context.Context) []attribute.KeyValue {
	id, ok := FromContext(ctx)
	if !ok {
		return nil
	}
	out := []attribute.KeyValue{AttrEndUserID.String(id.ID())}
	if id.ClientID != "" && id.ClientID != id.ID() {
		out = append(out, AttrClientID.String(id.ClientID))
	}
	return out
}

// LogHandler wraps h so that every record logged with a context that
// carries an identity gets enduser.id (and tracegate.auth.client_id). Use it
// only when the operator opted in to capturing identity.
func LogHandler(h slog.Handler) slog.Handler { return identityHandler{h} }

type identityHandler struct{ slog.Handler }

func (h identityHandler) Handle(ctx context.Context, r slog.Record) error {
	for _, kv := range Attributes(ctx) {
		r.AddAttrs(slog.String(string(kv.Key), kv.Value.AsString()))
	}
	return h.Handler.Handle(ctx, r)
}

func (h identityHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return identityHandler{h.Handler.WithAttrs(as)}
}

func (h identityHandler) WithGroup(name string) slog.Handler {
	return identityHandler{h.Handler.WithGroup(name)}
}
