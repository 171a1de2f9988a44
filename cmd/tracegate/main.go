// Command tracegate is an MCP gateway that turns every request into one
// OpenTelemetry trace.
//
//	tracegate serve -config tracegate.yaml
//	tracegate demo [-traffic]
//	tracegate probe [flags] URL
//	tracegate validate -config tracegate.yaml
//	tracegate version
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/tracegate/tracegate/internal/probe"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// Exit codes, in one place.
const (
	exitOK    = 0
	exitFail  = 1
	exitUsage = 2
)

const usage = `usage: tracegate <command> [flags]

commands:
  serve -config FILE     run the gateway
  demo [-traffic]        run the gateway with built-in demo backends and the trace viewer
  probe [flags] URL      check an MCP endpoint with a traced synthetic session
  validate -config FILE  check a configuration file and report every error
  version                print the version
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serveCmd(rest, stderr)
	case "demo":
		return demoCmd(rest, stdout, stderr)
	case "probe":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return probe.Main(ctx, rest, stdout, stderr)
	case "validate":
		return validateCmd(rest, stdout, stderr)
	case "version", "-version", "--version":
		fmt.Fprintf(stdout, "tracegate %s\n", version)
		return exitOK
	case demoBackendCmd:
		return demoBackend(rest, stderr)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
		return exitOK
	default:
		fmt.Fprintf(stderr, "tracegate: unknown command %q\n\n%s", cmd, usage)
		return exitUsage
	}
}
