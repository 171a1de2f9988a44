package wire

import (
	"bytes"
	"errors"
	"strconv"
)

// Message is one JSON-RPC 2.0 message, as positions in its bytes.
type Message struct {
	// Raw is the whole message.
	Raw []byte
	// ID is the raw id (a JSON string or number), nil when absent;
	// Raw[IDStart:IDEnd] is where it stands.
	ID             []byte
	IDStart, IDEnd int
	// Method is the method of a request or notification, "" for a response.
	Method string
	// Params is the raw params object, nil when absent; it starts at
	// Raw[ParamsAt].
	Params   []byte
	ParamsAt int
	// Result and Error are a response's raw members.
	Result, Error []byte
}

// IsRequest reports a request: a method and an id.
func (m *Message) IsRequest() bool { return m.Method != "" && m.ID != nil }

// IsNotification reports a notification: a method and no id.
func (m *Message) IsNotification() bool { return m.Method != "" && m.ID == nil }

// IsResponse reports a response: an id, and a result or an error.
func (m *Message) IsResponse() bool {
	return m.Method == "" && m.ID != nil && (m.Result != nil || m.Error != nil)
}

// Errors of Parse. A caller answers them with the JSON-RPC codes of
// section 5.1: ErrSyntax is -32700, the others -32600.
var (
	ErrBatch     = errors.New("batch requests are not supported")
	ErrNotObject = errors.New("a JSON-RPC message must be an object")
	ErrVersion   = errors.New(`jsonrpc must be "2.0"`)
	ErrRepeated  = errors.New("a member is repeated")
	ErrID        = errors.New("id must be a string or a number")
	ErrMethod    = errors.New("method must be a non-empty string")
	ErrShape     = errors.New("a message needs a method, or an id with a result or an error")
)

// Parse reads the top level of one JSON-RPC message. It refuses a
// repeated member: which of two values counts is up to each decoder, and
// the gateway must not route on one value while a backend reads the other.
func Parse(data []byte) (Message, error) {
	m := Message{Raw: data}
	i := SkipSpace(data, 0)
	if i < len(data) && data[i] == '[' {
		return m, ErrBatch
	}
	if i >= len(data) || data[i] != '{' {
		if _, err := SkipValue(data, i); err != nil {
			return m, ErrSyntax
		}
		return m, ErrNotObject
	}
	var seen uint8
	var perr error
	version := false
	end, err := EachMember(data, i, func(mem Member) bool {
		bit := topBit(data, mem)
		if bit != 0 && seen&bit != 0 {
			perr = ErrRepeated
			return false
		}
		seen |= bit
		v := mem.Value(data)
		switch bit {
		case bitVersion:
			version = string(v) == `"2.0"`
		case bitID:
			m.ID, m.IDStart, m.IDEnd = v, mem.ValStart, mem.ValEnd
		case bitMethod:
			s, ok := Unquote(v)
			if !ok || s == "" {
				perr = ErrMethod
				return false
			}
			m.Method = s
		case bitParams:
			m.Params, m.ParamsAt = v, mem.ValStart
		case bitResult:
			m.Result = v
		case bitError:
			m.Error = v
		}
		return true
	})
	switch {
	case err != nil:
		return m, ErrSyntax
	case SkipSpace(data, end) != len(data):
		return m, ErrSyntax
	case perr != nil:
		return m, perr
	case !version:
		return m, ErrVersion
	}
	if m.ID != nil && m.ID[0] != '"' && m.ID[0] != '-' && (m.ID[0] < '0' || m.ID[0] > '9') {
		return m, ErrID
	}
	if m.Method == "" && !m.IsResponse() {
		return m, ErrShape
	}
	return m, nil
}

const (
	bitVersion uint8 = 1 << iota
	bitID
	bitMethod
	bitParams
	bitResult
	bitError
)

func topBit(data []byte, m Member) uint8 {
	switch {
	case m.KeyIs(data, "jsonrpc"):
		return bitVersion
	case m.KeyIs(data, "id"):
		return bitID
	case m.KeyIs(data, "method"):
		return bitMethod
	case m.KeyIs(data, "params"):
		return bitParams
	case m.KeyIs(data, "result"):
		return bitResult
	case m.KeyIs(data, "error"):
		return bitError
	}
	return 0
}

// WithID returns a copy of the message with its id replaced by id (raw
// JSON). The message must have an id.
func (m *Message) WithID(id []byte) []byte {
	out := make([]byte, 0, len(m.Raw)-len(m.ID)+len(id))
	out = append(out, m.Raw[:m.IDStart]...)
	out = append(out, id...)
	return append(out, m.Raw[m.IDEnd:]...)
}

// IDString renders an id for people and attributes: a string's value, or
// a number's digits.
func IDString(raw []byte) string {
	if len(raw) > 0 && raw[0] == '"' {
		s, _ := Unquote(raw)
		return s
	}
	return string(raw)
}

// AppendResponse appends a response with the given raw id and raw result.
func AppendResponse(dst, id, result []byte) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	dst = append(dst, id...)
	dst = append(dst, `,"result":`...)
	dst = append(dst, result...)
	return append(dst, '}')
}

// AppendError appends an error response; id may be nil (null). data, when
// not nil, must be valid JSON.
func AppendError(dst, id []byte, code int64, message string, data []byte) []byte {
	dst = append(dst, `{"jsonrpc":"2.0","id":`...)
	if id == nil {
		dst = append(dst, "null"...)
	} else {
		dst = append(dst, id...)
	}
	dst = append(dst, `,"error":{"code":`...)
	dst = strconv.AppendInt(dst, code, 10)
	dst = append(dst, `,"message":`...)
	dst = AppendString(dst, message)
	if data != nil {
		dst = append(dst, `,"data":`...)
		dst = append(dst, data...)
	}
	return append(dst, "}}"...)
}

// AppendRequest appends a request or, with a nil id, a notification.
// params, when not nil, must be a raw JSON object.
func AppendRequest(dst, id []byte, method string, params []byte) []byte {
	dst = appendRequestHead(dst, id, method)
	if params != nil {
		dst = append(dst, `,"params":`...)
		dst = append(dst, params...)
	}
	return append(dst, '}')
}

// AppendRequestParams is AppendRequest with the params that
// AppendParams(params, sets, meta) makes, written in place rather than
// built apart and copied.
func AppendRequestParams(dst, id []byte, method string, params []byte, sets []Set, meta map[string]any) []byte {
	dst = appendRequestHead(dst, id, method)
	dst = append(dst, `,"params":`...)
	dst = AppendParams(dst, params, sets, meta)
	return append(dst, '}')
}

func appendRequestHead(dst, id []byte, method string) []byte {
	dst = append(dst, `{"jsonrpc":"2.0",`...)
	if id != nil {
		dst = append(dst, `"id":`...)
		dst = append(dst, id...)
		dst = append(dst, ',')
	}
	dst = append(dst, `"method":`...)
	return AppendString(dst, method)
}

// Error is a JSON-RPC error object.
type Error struct {
	Code    int64
	Message string
	Data    []byte // raw JSON, or nil
}

func (e *Error) Error() string { return e.Message }

// DecodeError reads a raw JSON-RPC error object.
func DecodeError(raw []byte) *Error {
	e := &Error{Code: -32603, Message: "malformed error object"}
	if v := Get(raw, "code"); v != nil {
		if n, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			e.Code = n
		}
	}
	if s, ok := GetString(raw, "message"); ok {
		e.Message = s
	}
	if v := Get(raw, "data"); v != nil {
		e.Data = bytes.Clone(v)
	}
	return e
}
