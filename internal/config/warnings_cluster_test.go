package config

import (
	"strings"
	"testing"
)

func TestWarningsClusterSecret(t *testing.T) {
	for _, tc := range []struct {
		cl   Cluster
		warn bool
	}{
		{Cluster{RedisURL: "redis://redis:6379/0", AdvertiseURL: "http://10.0.0.7:8080"}, true},
		{Cluster{RedisURL: "redis://:pw@redis:6379/0", AdvertiseURL: "http://10.0.0.7:8080"}, false},
		{Cluster{RedisURL: "redis://redis:6379/0", AdvertiseURL: "http://10.0.0.7:8080", Secret: "s"}, false},
		{Cluster{RedisURL: "redis://127.0.0.1:6379/0", AdvertiseURL: "http://127.0.0.1:8081"}, false},
	} {
		c := &Config{Backends: []Backend{{Name: "b"}}, AdminListen: "off", Cluster: &tc.cl}
		got := strings.Contains(c.Warnings().Error(), "cluster.secret")
		if got != tc.warn {
			t.Errorf("%+v: warned %v, want %v (%v)", tc.cl, got, tc.warn, c.Warnings())
		}
	}
}
