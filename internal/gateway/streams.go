package gateway

// CloseStreams ends the client streams that the gateway holds open (the
// standalone GET streams of stateful sessions and legacy SSE connections),
// so that a shutdown's grace period is spent on calls in flight rather
// than on waiting for clients to hang up. serve calls it when the grace
// period starts, before http.Server.Shutdown.
//
// It does nothing yet: the MCP listener's httplimit.Concurrency already
// ends streams through their request contexts. The request pipeline will
// close its own streams here, with whatever it must tell their clients.
// It is safe to call more than once, and on a nil Gateway.
func (g *Gateway) CloseStreams() {}
