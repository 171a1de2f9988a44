package traceview

type backendStates struct{}
