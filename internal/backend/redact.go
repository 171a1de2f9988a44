package backend

import (
	"net/url"
	"regexp"
	"strings"
)

// urlPattern finds URLs inside free text, such as an HTTP client's error.
var urlPattern = regexp.MustCompile(`[a-zA-Z][a-zA-Z0-9+.-]*://[^\s"'<>]+`)

// redact renders err for clients, spans, logs and /readyz: the user info,
// query and fragment of every URL in it are removed (a backend URL may
// carry a credential there), and so are configured header values.
func (b *Backend) redact(err error) string {
	msg := urlPattern.ReplaceAllStringFunc(err.Error(), func(s string) string {
		u, perr := url.Parse(s)
		if perr != nil {
			if i := strings.IndexAny(s, "?#@"); i >= 0 {
				return s[:i]
			}
			return s
		}
		u.User, u.RawQuery, u.ForceQuery, u.Fragment, u.RawFragment = nil, "", false, "", ""
		return u.String()
	})
	for _, v := range b.cfg.Headers {
		if len(v) >= 4 {
			msg = strings.ReplaceAll(msg, v, "[redacted]")
		}
	}
	return msg
}

// Redact is redact for the gateway's own messages about the backend.
func (b *Backend) Redact(err error) string { return b.redact(err) }
