package otlptest

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"

	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"
)

// unmarshalOTLPJSON decodes the OTLP JSON encoding. It is the protobuf JSON
// mapping with one exception: trace and span ids are hex strings, not
// base64 (OTLP spec, "JSON Protobuf Encoding"). The ids are rewritten to
// base64 before protojson sees them.
func unmarshalOTLPJSON(body []byte, msg proto.Message) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber() // keep 64-bit integers such as timestamps exact
	var tree any
	if err := dec.Decode(&tree); err != nil {
		return fmt.Errorf("decode json: %w", err)
	}
	if err := hexIDsToBase64(tree); err != nil {
		return err
	}
	norm, err := json.Marshal(tree)
	if err != nil {
		return fmt.Errorf("re-encode json: %w", err)
	}
	// Unknown fields must be ignored for forward compatibility (OTLP spec).
	if err := (protojson.UnmarshalOptions{DiscardUnknown: true}).Unmarshal(norm, msg); err != nil {
		return fmt.Errorf("decode otlp json: %w", err)
	}
	return nil
}

var idKeys = map[string]bool{
	"traceId": true, "spanId": true, "parentSpanId": true,
	"trace_id": true, "span_id": true, "parent_span_id": true,
}

func hexIDsToBase64(v any) error {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			if s, ok := e.(string); ok && idKeys[k] {
				b, err := hex.DecodeString(s)
				if err != nil {
					return fmt.Errorf("%s %q: ids are hex in OTLP JSON: %w", k, s, err)
				}
				x[k] = base64.StdEncoding.EncodeToString(b)
				continue
			}
			if err := hexIDsToBase64(e); err != nil {
				return err
			}
		}
	case []any:
		for _, e := range x {
			if err := hexIDsToBase64(e); err != nil {
				return err
			}
		}
	}
	return nil
}
