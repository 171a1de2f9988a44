package auth_test

import (
	"bytes"
	"context"
	"log/slog"
	"strings"
	"testing"

	"github.com/tracegate/tracegate/internal/auth"
)

func TestAttributesAndLogs(t *testing.T) {
	t.Parallel()
	if got := auth.Attributes(context.Background()); got != nil {
		t.Errorf("no identity: got %v, want none", got)
	}
	ctx := auth.NewContext(context.Background(), auth.Identity{Method: auth.MethodOAuth, Subject: "alice", ClientID: "agent-1"})
	got := auth.Attributes(ctx)
	if len(got) != 2 || got[0].Key != "enduser.id" || got[0].Value.AsString() != "alice" || got[1].Value.AsString() != "agent-1" {
		t.Errorf("got %v, want enduser.id=alice and tracegate.auth.client_id=agent-1", got)
	}
	var buf bytes.Buffer
	log := slog.New(auth.LogHandler(slog.NewJSONHandler(&buf, nil))).With("component", "test")
	log.InfoContext(ctx, "call")
	log.InfoContext(context.Background(), "other")
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if !strings.Contains(lines[0], `"enduser.id":"alice"`) || !strings.Contains(lines[0], `"component":"test"`) {
		t.Errorf("log with identity: %s", lines[0])
	}
	if strings.Contains(lines[1], "enduser.id") {
		t.Errorf("log without identity: %s", lines[1])
	}
}
