package backend

import (
	"context"
	"fmt"

	"github.com/tracegate/tracegate/internal/wire"
)

// Catalog is what a backend offers, as last listed, with each item kept
// as the server sent it. It is immutable once published.
type Catalog struct {
	Init      Init
	Tools     []Item
	Prompts   []Item
	Resources []Item // Key is the URI
	Templates []Item // Key is the URI template
}

// Item is one tool, prompt, resource or resource template: its name (or
// URI, or URI template) and its raw JSON object.
type Item struct {
	Key string
	Raw []byte
}

// maxPages bounds one list's pagination: a server that hands out cursors
// forever must not keep the gateway listing.
const maxPages = 1000

func (s *Session) listCatalog(ctx context.Context) (*Catalog, error) {
	cat := &Catalog{Init: s.init}
	var err error
	caps := s.init.Caps
	if caps.Tools {
		if cat.Tools, err = s.listAll(ctx, "tools/list", "tools", "name"); err != nil {
			return nil, err
		}
	}
	if caps.Prompts {
		if cat.Prompts, err = s.listAll(ctx, "prompts/list", "prompts", "name"); err != nil {
			return nil, err
		}
	}
	if caps.Resources {
		if cat.Resources, err = s.listAll(ctx, "resources/list", "resources", "uri"); err != nil {
			return nil, err
		}
		if cat.Templates, err = s.listAll(ctx, "resources/templates/list", "resourceTemplates", "uriTemplate"); err != nil {
			return nil, err
		}
	}
	return cat, nil
}

// listAll follows a list method's pagination and returns its items,
// skipping any without a string key.
func (s *Session) listAll(ctx context.Context, method, field, key string) ([]Item, error) {
	var items []Item
	var cursor []byte
	for range maxPages {
		var params []byte
		if cursor != nil {
			params = append(append([]byte(`{"cursor":`), cursor...), '}')
		}
		result, err := s.Call(ctx, method, params, false)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", method, err)
		}
		list := wire.Get(result, field)
		if len(list) > 0 && list[0] == '[' {
			if err := wire.EachElement(list, func(v []byte) bool {
				if k, ok := wire.GetString(v, key); ok {
					items = append(items, Item{Key: k, Raw: v})
				}
				return true
			}); err != nil {
				return nil, fmt.Errorf("%s: %w", method, err)
			}
		}
		cursor = wire.Get(result, "nextCursor")
		if len(cursor) == 0 || cursor[0] != '"' || string(cursor) == `""` {
			return items, nil
		}
	}
	return nil, fmt.Errorf("%s: more than %d pages", method, maxPages)
}
