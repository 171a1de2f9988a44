package conn

import (
	"errors"
	"fmt"
	"net/url"
)

// checkURL checks a server's URL and returns it fit for errors and logs:
// without user info, query or fragment, which may hold credentials.
func checkURL(raw string) (string, error) {
	u, err := url.Parse(raw)
	if err != nil {
		// url.Parse quotes the input in its error: say less.
		return "", errors.New("the server URL does not parse")
	}
	if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
		return "", fmt.Errorf("the server URL %s must be http or https, with a host", redact(u))
	}
	return redact(u), nil
}

func redact(u *url.URL) string {
	c := *u
	c.User = nil
	c.RawQuery, c.ForceQuery = "", false
	c.Fragment, c.RawFragment = "", ""
	return c.String()
}

// unwrapURLError drops the *url.Error around an HTTP client's error: it
// quotes the whole URL, query included.
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}
