package auth

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/tracegate/tracegate/internal/config"
)

// maxDocument bounds a metadata or JWKS document read from the issuer.
const maxDocument = 1 << 20

// keySet is the issuer's JWKS, fetched when first needed, kept for maxAge,
// and fetched again at once when a token names a key it does not hold (the
// issuer rotated its keys), but not more often than minRefetch, so that
// tokens with made-up key IDs cannot make the gateway hammer the issuer.
type keySet struct {
	client     *http.Client
	issuer     string // for discovery, when url is empty
	now        func() time.Time
	minRefetch time.Duration
	maxAge     time.Duration

	mu      sync.RWMutex
	url     string                       // the JWKS URL, configured or discovered
	keys    map[string][]jose.JSONWebKey // by kid; "" holds keys without one
	fetched time.Time

	fetchMu   sync.Mutex // one fetch at a time
	attempted time.Time  // last fetch attempt, even a failed one
	lastErr   error      // of that attempt
	unknownAt time.Time  // last fetch caused by an unknown key ID
}

var errUnknownKey = errors.New("no key in the issuer's JWKS matches the token")

// lookup returns the keys that may have signed a token with key ID kid.
func (ks *keySet) lookup(ctx context.Context, kid string) ([]jose.JSONWebKey, error) {
	ks.mu.RLock()
	keys, fresh := ks.keys[kid], ks.keys != nil && ks.now().Sub(ks.fetched) < ks.maxAge
	ks.mu.RUnlock()
	if len(keys) > 0 && fresh {
		return keys, nil
	}
	err := ks.refresh(ctx, !fresh)
	ks.mu.RLock()
	keys = ks.keys[kid]
	ks.mu.RUnlock()
	if len(keys) > 0 {
		// A stale set still verifies while the issuer is unreachable.
		return keys, nil
	}
	if err != nil {
		return nil, err
	}
	return nil, errUnknownKey
}

// refresh fetches the JWKS again unless another caller did while this one
// waited. A fetch for an unknown key ID (not force) happens at most once per
// minRefetch; fetches of a missing or expired set (force) always do.
func (ks *keySet) refresh(ctx context.Context, force bool) error {
	before := ks.now()
	ks.fetchMu.Lock()
	defer ks.fetchMu.Unlock()
	if ks.attempted.After(before) {
		return ks.lastErr // fetched while we waited
	}
	if ks.lastErr != nil && ks.now().Sub(ks.attempted) < retryFailed {
		// The issuer just failed: do not queue every request behind
		// another attempt.
		return ks.lastErr
	}
	if !force {
		if !ks.unknownAt.IsZero() && ks.now().Sub(ks.unknownAt) < ks.minRefetch {
			return nil
		}
		ks.unknownAt = ks.now()
	}
	ks.attempted = ks.now()
	// Not the caller's cancellation: others wait on this fetch too. The
	// client's timeout bounds it.
	ks.lastErr = ks.fetch(context.WithoutCancel(ctx))
	return ks.lastErr
}

// retryFailed is how long a failed fetch is reported before another is
// tried.
const retryFailed = time.Second

func (ks *keySet) fetch(ctx context.Context) error {
	u, err := ks.jwksURL(ctx)
	if err != nil {
		return err
	}
	var set jose.JSONWebKeySet
	if err := getJSON(ctx, ks.client, u, &set); err != nil {
		return fmt.Errorf("fetching the issuer's JWKS: %w", err)
	}
	keys := make(map[string][]jose.JSONWebKey, len(set.Keys))
	for _, k := range set.Keys {
		// RFC 7517 section 4.2: keys meant for encryption do not verify.
		if k.Use != "" && k.Use != "sig" || !k.IsPublic() || !k.Valid() {
			continue
		}
		keys[k.KeyID] = append(keys[k.KeyID], k)
	}
	ks.mu.Lock()
	ks.keys, ks.fetched = keys, ks.now()
	ks.mu.Unlock()
	return nil
}

// jwksURL returns the configured JWKS URL, or discovers it from the
// issuer's metadata: RFC 8414 first, then OpenID Connect Discovery 1.0.
func (ks *keySet) jwksURL(ctx context.Context) (string, error) {
	ks.mu.RLock()
	u := ks.url
	ks.mu.RUnlock()
	if u != "" {
		return u, nil
	}
	var errs []error
	for _, mu := range metadataURLs(ks.issuer) {
		var md struct {
			Issuer  string `json:"issuer"`
			JWKSURI string `json:"jwks_uri"`
		}
		if err := getJSON(ctx, ks.client, mu, &md); err != nil {
			errs = append(errs, err)
			continue
		}
		// RFC 8414 section 3.3: the issuer in the metadata must be the
		// one the metadata was looked up for.
		if md.Issuer != ks.issuer {
			errs = append(errs, fmt.Errorf("%s: issuer %q, want %q", mu, md.Issuer, ks.issuer))
			continue
		}
		if msg := checkFetchURL(md.JWKSURI); msg != "" {
			errs = append(errs, fmt.Errorf("%s: jwks_uri: %s", mu, msg))
			continue
		}
		ks.mu.Lock()
		ks.url = md.JWKSURI
		ks.mu.Unlock()
		return md.JWKSURI, nil
	}
	return "", fmt.Errorf("discovering the issuer's JWKS: %w", errors.Join(errs...))
}

// metadataURLs are where an issuer's metadata may be: RFC 8414 section 3.1
// inserts the well-known segment before the issuer's path; OpenID Connect
// Discovery appends it.
func metadataURLs(issuer string) []string {
	u, err := url.Parse(issuer)
	if err != nil {
		return nil
	}
	path := strings.TrimSuffix(u.Path, "/")
	rfc := *u
	rfc.Path = "/.well-known/oauth-authorization-server" + path
	oidc := *u
	oidc.Path = path + "/.well-known/openid-configuration"
	return []string{rfc.String(), oidc.String()}
}

// checkFetchURL applies the rule of config.checkIdPURL to a discovered URL.
func checkFetchURL(s string) string {
	u, err := url.Parse(s)
	switch {
	case err != nil || u.Host == "":
		return "not an absolute URL"
	case u.Scheme == "https":
		return ""
	case u.Scheme == "http" && config.LoopbackHost(u.Hostname()):
		return ""
	}
	return "must be https (or http on a loopback host)"
}

func getJSON(ctx context.Context, c *http.Client, u string, v any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return err
	}
	req.Header.Set("Accept", "application/json")
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: HTTP %d", u, resp.StatusCode)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxDocument+1))
	if err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	if len(data) > maxDocument {
		return fmt.Errorf("%s: document over %d bytes", u, maxDocument)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", u, err)
	}
	return nil
}
