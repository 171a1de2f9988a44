package config

import (
	"net"
	"net/url"
)

// Warnings lists what is valid but probably not meant: the configuration
// serves, yet an operator should look. Like Validate's errors, each names
// its path.
func (c *Config) Warnings() Errors {
	var ws Errors
	if len(c.Backends) == 0 {
		ws.add(0, "backends", "no backends: the gateway will serve no tools, prompts or resources")
	}
	if c.AdminListen != "off" && !loopback(c.AdminListen) && len(c.AdminTokens()) == 0 {
		ws.add(0, "admin_listen", "binds beyond loopback and no admin.bearer_tokens or auth.bearer_tokens are set: anyone who reaches it can read traces, metrics and the configuration")
	}
	if cl := c.Cluster; cl != nil && cl.Secret == "" {
		u, err := url.Parse(cl.AdvertiseURL)
		r, rerr := url.Parse(cl.RedisURL)
		_, hasPassword := r.User.Password()
		if err == nil && rerr == nil && !hasPassword && !loopback(u.Host) {
			ws.add(0, "cluster.secret", "unset, and redis_url has no password: the key replicas authenticate forwards with is derived from redis_url alone, which is not a secret; set cluster.secret")
		}
	}
	return ws
}

// loopback reports whether a listen address binds only to a loopback
// interface. An empty host, like 0.0.0.0 or ::, binds to every interface.
func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
