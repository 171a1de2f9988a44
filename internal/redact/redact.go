package redact

import (
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
)

// Mask replaces every secret found.
const Mask = "REDACTED"

// MinSecretLen is the shortest caller-named secret that String replaces.
// Shorter values would mask ordinary words and digits all over a text,
// and are no protection anyway.
const MinSecretLen = 4

// credentialWords mark a parameter or header name as a credential when
// the lower-cased name contains one of them. False positives (author,
// monkey) only hide a value; a miss leaks one, so the list is generous.
var credentialWords = []string{"key", "token", "secret", "passw", "auth", "signature", "credential", "cookie", "session"}

// credentialParts are too short to match inside a word ("signal",
// "compass"), so they count only as a whole part of a name: "sig",
// "x-amz-sig", "db_pwd".
var credentialParts = []string{"sig", "pwd", "pw", "pass", "sid"}

// IsCredentialName reports whether a query parameter, form field or header
// named name probably holds a credential.
func IsCredentialName(name string) bool {
	n := strings.ToLower(name)
	if u, err := url.QueryUnescape(n); err == nil {
		n = u
	}
	for _, w := range credentialWords {
		if strings.Contains(n, w) {
			return true
		}
	}
	for part := range strings.FieldsFuncSeq(n, func(r rune) bool { return !(r >= 'a' && r <= 'z' || r >= '0' && r <= '9') }) {
		if slices.Contains(credentialParts, part) {
			return true
		}
	}
	return false
}

var (
	// urlPattern finds absolute URLs in free text; it stops at white
	// space and at the quotes and brackets that usually surround a URL
	// in an error message.
	urlPattern = regexp.MustCompile("[A-Za-z][A-Za-z0-9+.-]*://[^\\s\"'`<>]+")
	// paramPattern finds key=value pairs outside URLs, as in a form body or
	// "retrying with token=abc". The key test is IsCredentialName.
	paramPattern = regexp.MustCompile(`([A-Za-z0-9_.\-\[\]%]+)=([^\s&;,"'` + "`" + `<>]+)`)
	// schemePattern finds an HTTP authorization scheme and its credential.
	schemePattern = regexp.MustCompile(`(?i)\b(bearer|basic|token)(\s+)([A-Za-z0-9._~+/=\-]{4,})`)
)

// URL returns s with its user info replaced and the values of
// credential-looking query and fragment parameters masked. s need not parse
// as a URL: it is scanned, not decoded and re-encoded, so the rest of it is
// kept as it was.
func URL(s string) string {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok {
		return maskParams(s)
	}
	authEnd := strings.IndexAny(rest, "/?#")
	if authEnd < 0 {
		authEnd = len(rest)
	}
	authority, tail := rest[:authEnd], rest[authEnd:]
	if at := strings.LastIndexByte(authority, '@'); at >= 0 {
		authority = Mask + authority[at:]
	}
	path, query, hasQuery := strings.Cut(tail, "?")
	if !hasQuery {
		// A fragment alone can carry a token (OAuth implicit flow).
		p, frag, hasFrag := strings.Cut(tail, "#")
		if hasFrag {
			return scheme + "://" + authority + p + "#" + maskParams(frag)
		}
		return scheme + "://" + authority + tail
	}
	query, frag, hasFrag := strings.Cut(query, "#")
	out := scheme + "://" + authority + path + "?" + maskParams(query)
	if hasFrag {
		out += "#" + maskParams(frag)
	}
	return out
}

// maskParams masks the values of credential-looking key=value pairs.
func maskParams(s string) string {
	if !strings.Contains(s, "=") {
		return s
	}
	return paramPattern.ReplaceAllStringFunc(s, func(kv string) string {
		k, _, _ := strings.Cut(kv, "=")
		if !IsCredentialName(k) {
			return kv
		}
		return k + "=" + Mask
	})
}

// String removes credentials from free text: URLs' user info and
// credential parameters, credential key=value pairs, "Bearer x" and
// "Basic x", and every occurrence of each of secrets (verbatim or
// percent-encoded). Secrets shorter than MinSecretLen are ignored.
func String(s string, secrets ...string) string {
	for _, sec := range secrets {
		if len(sec) < MinSecretLen {
			continue
		}
		for _, form := range encodings(sec) {
			s = strings.ReplaceAll(s, form, Mask)
		}
	}
	return clean(s)
}

// clean is String without caller-named secrets.
func clean(s string) string {
	if strings.Contains(s, "://") {
		s = urlPattern.ReplaceAllStringFunc(s, URL)
	}
	s = maskParams(s)
	if hasScheme(s) {
		s = schemePattern.ReplaceAllString(s, "${1}${2}"+Mask)
	}
	return s
}

// hasScheme is a cheap test before schemePattern, which is slow.
func hasScheme(s string) bool {
	return containsFold(s, "bearer") || containsFold(s, "basic") || containsFold(s, "token")
}

// containsFold is strings.Contains ignoring ASCII case; word is lower case.
func containsFold(s, word string) bool {
	for i := 0; i+len(word) <= len(s); i++ {
		if s[i]|0x20 == word[0] && strings.EqualFold(s[i:i+len(word)], word) {
			return true
		}
	}
	return false
}

// Error is String of err's text; "" for a nil error.
func Error(err error, secrets ...string) string {
	if err == nil {
		return ""
	}
	return String(err.Error(), secrets...)
}

// encodings are the forms a secret takes in a text: as is, and as a query
// or path component would carry it.
func encodings(sec string) []string {
	forms := []string{sec}
	for _, f := range []string{url.QueryEscape(sec), url.PathEscape(sec)} {
		if !slices.Contains(forms, f) {
			forms = append(forms, f)
		}
	}
	return forms
}

// sensitiveHeaders always carry credentials, whatever IsCredentialName says.
var sensitiveHeaders = []string{"Authorization", "Proxy-Authorization", "Cookie", "Set-Cookie", "X-Api-Key"}

// IsSensitiveHeader reports whether a header named name carries a
// credential: the authorization and cookie headers, and any name that
// IsCredentialName accepts.
func IsSensitiveHeader(name string) bool {
	c := http.CanonicalHeaderKey(name)
	return slices.Contains(sensitiveHeaders, c) || IsCredentialName(c)
}

// Headers returns a copy of h in which the values of sensitive headers
// (IsSensitiveHeader) are Mask, and every other value is String of itself.
// h is not changed.
func Headers(h http.Header) http.Header {
	out := make(http.Header, len(h))
	for k, vs := range h {
		c := make([]string, len(vs))
		for i, v := range vs {
			if IsSensitiveHeader(k) {
				c[i] = Mask
			} else {
				c[i] = String(v)
			}
		}
		out[k] = c
	}
	return out
}

// HeaderSecrets returns the secrets that configured header values hold, to
// pass to String: each value of a sensitive header, and its credential
// alone when it has a scheme ("Bearer abc" gives "Bearer abc" and "abc"),
// since an error may quote either.
func HeaderSecrets(h map[string]string) []string {
	var out []string
	for k, v := range h {
		if !IsSensitiveHeader(k) || v == "" {
			continue
		}
		out = append(out, v)
		if _, cred, ok := strings.Cut(strings.TrimSpace(v), " "); ok {
			if cred = strings.TrimSpace(cred); cred != "" {
				out = append(out, cred)
			}
		}
	}
	// Longest first, so that "Bearer abc" goes before "abc" leaves
	// "Bearer " behind.
	slices.SortFunc(out, longestFirst)
	return slices.Compact(out)
}

// Redactor is String with a fixed set of secrets, built once from
// configuration and shared. The zero value redacts without secrets.
type Redactor struct {
	forms []string // every encoding of every secret, longest first
}

// New returns a Redactor for secrets; empty and short ones are dropped.
func New(secrets ...string) *Redactor {
	r := &Redactor{}
	for _, s := range secrets {
		if len(s) >= MinSecretLen {
			r.forms = append(r.forms, encodings(s)...)
		}
	}
	slices.SortFunc(r.forms, longestFirst)
	r.forms = slices.Compact(r.forms)
	return r
}

// String is String(s, r's secrets...). A nil Redactor has no secrets.
func (r *Redactor) String(s string) string {
	if r != nil {
		for _, f := range r.forms {
			if strings.Contains(s, f) {
				s = strings.ReplaceAll(s, f, Mask)
			}
		}
	}
	return clean(s)
}

// Error is Error(err, r's secrets...).
func (r *Redactor) Error(err error) string {
	if err == nil {
		return ""
	}
	return r.String(err.Error())
}

func longestFirst(a, b string) int {
	if len(a) != len(b) {
		return len(b) - len(a)
	}
	return strings.Compare(a, b)
}
