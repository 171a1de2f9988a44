package cluster

import (
	"regexp"
	"testing"

	"github.com/tracegate/tracegate/internal/config"
)

func TestReplicaID(t *testing.T) {
	t.Parallel()
	cfg := config.Cluster{RedisURL: "redis://127.0.0.1:1/0", AdvertiseURL: "http://127.0.0.1:2"}
	c, err := New(cfg, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got := c.Self().ID; !regexp.MustCompile(`^[0-9a-f]{8}$`).MatchString(got) {
		t.Errorf("a made id: got %q, want 8 hex digits", got)
	}
	c2, err := New(cfg, Options{ID: "r1demo"})
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	if got := c2.Self().ID; got != "r1demo" {
		t.Errorf("a given id: got %q, want r1demo", got)
	}
	// The id is part of relayed requests' ids ("tgs-ID-N"), and of the
	// member list's "ID URL" entries.
	for _, bad := range []string{"a-b", "A1", "a b", "0123456789abcdef0123456789abcdef0"} {
		if _, err := New(cfg, Options{ID: bad}); err == nil {
			t.Errorf("id %q: got no error, want one", bad)
		}
	}
}
