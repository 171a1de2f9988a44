package gateway_test

import (
	"context"
	"time"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/gateway"
)

type ctxAlias = context.Context

type gatewayOptions struct{}

func (gatewayOptions) opts() gateway.Options { return gateway.Options{} }

func durationOf(d time.Duration) config.Duration { return config.Duration(d) }
