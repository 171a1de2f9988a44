package conn

import (
	"context"
	"errors"
)

func dialSSE(ctx context.Context, ep Endpoint, opts Options) (Conn, error) {
	return nil, errors.New("not yet")
}
