// Command tracegate is an MCP gateway that turns every request into one
// OpenTelemetry trace.
//
//	tracegate serve -config tracegate.yaml
//	tracegate stdio -config tracegate.yaml
//	tracegate demo [-traffic] [-replicas N]
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

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// Exit codes, in one place; the README's table and every -h repeat them.
const (
	exitOK    = 0 // success; for probe, the endpoint is healthy
	exitFail  = 1 // the command ran and failed: invalid config, a listener that cannot bind, an unhealthy probe
	exitUsage = 2 // bad flags or arguments
)

const exitCodesHelp = `
exit codes: 0 success (for stdio: the client closed stdin), 1 failure
(invalid configuration, startup error, unhealthy probe), 2 usage error
`

const usage = `usage: tracegate <command> [flags]

commands:
  serve -config FILE     run the gateway
  stdio -config FILE     serve one MCP client over stdin and stdout (desktop agents)
  demo [-traffic]        run the gateway with built-in demo backends and the trace viewer
                         (-replicas N: N replicas sharing sessions through Redis)
  probe [flags] URL      check an MCP endpoint with a traced synthetic session
  validate -config FILE  check a configuration file and report every error
  version                print the module version, VCS revision and time

Run "tracegate <command> -h" for a command's flags.
`

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd, rest := args[0], args[1:]
	switch cmd {
	case "serve":
		return serveCmd(rest, stdout, stderr)
	case "stdio":
		return stdioCmd(rest, os.Stdin, stdout, stderr)
	case "demo":
		return demoCmd(rest, stdout, stderr)
	case "probe":
		ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
		defer stop()
		return probe.Main(ctx, rest, stdout, stderr)
	case "validate":
		return validateCmd(rest, stdout, stderr)
	case "version", "-version", "--version":
		return versionCmd(rest, stdout, stderr)
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
