package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
)

// flagSet is a subcommand's flags with its help text. -h prints the help
// to stdout and exits 0; a bad flag prints the error and the help to
// stderr and exits 2.
type flagSet struct {
	*flag.FlagSet
	synopsis, about string
	stdout, stderr  io.Writer
	// noArgs refuses positional arguments.
	noArgs bool
}

func newFlagSet(name, args, about string, stdout, stderr io.Writer) *flagSet {
	fs := &flagSet{FlagSet: flag.NewFlagSet(name, flag.ContinueOnError), about: about, stdout: stdout, stderr: stderr, noArgs: args == ""}
	fs.synopsis = strings.TrimSpace("tracegate " + name + " [flags] " + args)
	fs.SetOutput(stderr)
	fs.Usage = func() {} // parseFlags prints the help where it belongs
	return fs
}

func (fs *flagSet) printHelp(w io.Writer) {
	fmt.Fprintf(w, "usage: %s\n\n%s\n", fs.synopsis, fs.about)
	n := 0
	fs.VisitAll(func(*flag.Flag) { n++ })
	if n > 0 {
		fmt.Fprint(w, "\nflags:\n")
		out := fs.Output()
		fs.SetOutput(w)
		fs.PrintDefaults()
		fs.SetOutput(out)
	}
	fmt.Fprint(w, exitCodesHelp)
}

// parseFlags parses args; done is true when the command must return code
// at once (help, or a usage error).
func parseFlags(fs *flagSet, args []string) (code int, done bool) {
	err := fs.Parse(args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		fs.printHelp(fs.stdout)
		return exitOK, true
	case err != nil:
		fmt.Fprintln(fs.stderr)
		fs.printHelp(fs.stderr)
		return exitUsage, true
	case fs.noArgs && fs.NArg() > 0:
		fmt.Fprintf(fs.stderr, "tracegate %s: unexpected argument %q\n\n", fs.Name(), fs.Arg(0))
		fs.printHelp(fs.stderr)
		return exitUsage, true
	}
	return exitOK, false
}
