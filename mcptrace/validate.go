package mcptrace

import "strings"

// Limits from the W3C specifications.
const (
	// MaxBaggageBytes is the largest baggage value accepted on extraction
	// (W3C Baggage, "Limits": 8192 bytes per baggage-string).
	MaxBaggageBytes = 8192
	// maxBaggageMembers is W3C Baggage's limit of 64 list-members.
	maxBaggageMembers = 64
	// maxTracestateMembers is W3C Trace Context's limit of 32 list-members.
	maxTracestateMembers = 32
	// traceparentLen is the length of a version 00 traceparent.
	traceparentLen = 55
)

// validTraceparent reports whether s is a well-formed traceparent (W3C Trace
// Context, section 3.2): version "-" trace-id "-" parent-id "-" trace-flags,
// in lower-case hex, version not ff, neither id all zeros. Version 00 has
// exactly these four fields and no reserved flag bits (sampled and random
// only); a later version may append "-" and more fields (section 4.3).
func validTraceparent(s string) bool {
	if len(s) < traceparentLen || s[2] != '-' || s[35] != '-' || s[52] != '-' {
		return false
	}
	if !isLowerHex(s[:2]) || s[:2] == "ff" {
		return false
	}
	if s[:2] == "00" {
		if len(s) != traceparentLen {
			return false
		}
	} else if len(s) > traceparentLen && s[traceparentLen] != '-' {
		return false
	}
	traceID, spanID, flags := s[3:35], s[36:52], s[53:55]
	if !isLowerHex(traceID) || !isLowerHex(spanID) || !isLowerHex(flags) {
		return false
	}
	if allZeros(traceID) || allZeros(spanID) {
		return false
	}
	// Reserved bits in version 00 are refused, as the OpenTelemetry
	// propagator that parses the value next refuses them.
	return s[:2] != "00" || flags[0] == '0' && flags[1] <= '3'
}

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}

func allZeros(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] != '0' {
			return false
		}
	}
	return true
}

// validTracestate reports whether s is a well-formed tracestate (W3C Trace
// Context, section 3.3): at most 32 comma-separated key=value members with
// unique keys. Empty members are allowed; blank ones are not.
func validTracestate(s string) bool {
	var seen [maxTracestateMembers]string
	n := 0
	for s != "" {
		var m string
		m, s, _ = strings.Cut(s, ",")
		if m == "" {
			continue
		}
		key, val, ok := strings.Cut(m, "=")
		if !ok {
			return false
		}
		key = strings.TrimLeft(key, " \t")
		val = strings.TrimRight(val, " \t")
		if !validTracestateKey(key) || !validTracestateValue(val) {
			return false
		}
		if n == maxTracestateMembers {
			return false
		}
		for _, k := range seen[:n] {
			if k == key {
				return false
			}
		}
		seen[n] = key
		n++
	}
	return true
}

// validTracestateKey checks
//
//	key = simple-key / multi-tenant-key
//	simple-key = lcalpha 0*255( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
//	multi-tenant-key = tenant-id "@" system-id
//	tenant-id = ( lcalpha / DIGIT ) 0*240( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
//	system-id = lcalpha 0*13( lcalpha / DIGIT / "_" / "-"/ "*" / "/" )
func validTracestateKey(key string) bool {
	tenant, system, multi := strings.Cut(key, "@")
	if !multi {
		return len(key) >= 1 && len(key) <= 256 && isLowerAlpha(key[0]) && tracestateKeyRest(key[1:])
	}
	return len(tenant) >= 1 && len(tenant) <= 241 && (isLowerAlpha(tenant[0]) || isDigit(tenant[0])) && tracestateKeyRest(tenant[1:]) &&
		len(system) >= 1 && len(system) <= 14 && isLowerAlpha(system[0]) && tracestateKeyRest(system[1:])
}

func tracestateKeyRest(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(isLowerAlpha(c) || isDigit(c) || c == '_' || c == '-' || c == '*' || c == '/') {
			return false
		}
	}
	return true
}

// validTracestateValue checks value = 0*255(chr) nblk-chr, where chr is
// %x20-2B / %x2D-3C / %x3E-7E and nblk-chr the same without space.
func validTracestateValue(v string) bool {
	if len(v) == 0 || len(v) > 256 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c < 0x20 || c > 0x7e || c == ',' || c == '=' {
			return false
		}
	}
	return v[len(v)-1] != ' '
}

func isLowerAlpha(c byte) bool { return 'a' <= c && c <= 'z' }
func isDigit(c byte) bool      { return '0' <= c && c <= '9' }

// validBaggage reports whether s is a well-formed baggage-string (W3C
// Baggage, section 3.3.1) of at most 64 members:
//
//	baggage-string = list-member 0*179( OWS "," OWS list-member )
//	list-member    = key OWS "=" OWS value *( OWS ";" OWS property )
//	property       = key OWS "=" OWS value / key OWS
//	key            = token
//	value          = *baggage-octet, with valid percent-encoding
//
// Empty properties (";;") are tolerated, as common parsers do; blank ones
// are not. The size
// limit is checked separately, so that it can be counted apart.
func validBaggage(s string) bool {
	members := 0
	for {
		m, rest, more := strings.Cut(s, ",")
		members++
		if members > maxBaggageMembers || !validBaggageMember(m) {
			return false
		}
		if !more {
			return true
		}
		s = rest
	}
}

func validBaggageMember(m string) bool {
	kv, props, hasProps := strings.Cut(m, ";")
	key, val, ok := strings.Cut(kv, "=")
	if !ok || !isToken(trimOWS(key)) || !isBaggageValue(trimOWS(val)) {
		return false
	}
	for hasProps {
		var p string
		p, props, hasProps = strings.Cut(props, ";")
		if p == "" {
			continue
		}
		pk, pv, hasValue := strings.Cut(p, "=")
		if !isToken(trimOWS(pk)) || hasValue && !isBaggageValue(trimOWS(pv)) {
			return false
		}
	}
	return true
}

func trimOWS(s string) string {
	for len(s) > 0 && (s[0] == ' ' || s[0] == '\t') {
		s = s[1:]
	}
	for len(s) > 0 && (s[len(s)-1] == ' ' || s[len(s)-1] == '\t') {
		s = s[:len(s)-1]
	}
	return s
}

// isToken checks token = 1*tchar (RFC 9110, section 5.6.2).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case isDigit(c), 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z':
		case strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// isBaggageValue checks *baggage-octet, where baggage-octet is %x21 /
// %x23-2B / %x2D-3A / %x3C-5B / %x5D-7E, and that every "%" starts a
// percent-encoded octet.
func isBaggageValue(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x21 || c > 0x7e || c == '"' || c == ',' || c == ';' || c == '\\' {
			return false
		}
		if c == '%' {
			if i+2 >= len(s) || !isHexDigit(s[i+1]) || !isHexDigit(s[i+2]) {
				return false
			}
			i += 2
		}
	}
	return true
}

func isHexDigit(c byte) bool {
	return isDigit(c) || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}
