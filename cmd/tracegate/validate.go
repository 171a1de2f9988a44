package main

import (
	"errors"
	"fmt"
	"io"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/plugin"
)

func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", "", "Check a configuration file without starting anything, and report every problem\nat once, each with its file:line:column and path. Exits 1 when there are errors.", stdout, stderr)
	path := fs.String("config", "tracegate.yaml", "configuration `file`")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	cfg, err := config.Load(*path)
	var problems []string
	if err != nil {
		var errs config.Errors
		if !errors.As(err, &errs) {
			fmt.Fprintf(stderr, "tracegate: %v\n", err)
			return exitFail
		}
		for _, e := range errs {
			problems = append(problems, e.Error())
		}
	}
	if cfg != nil {
		for i, p := range cfg.Plugins {
			if err := plugin.Validate(p); err != nil {
				problems = append(problems, fmt.Sprintf("plugins[%d]: %v", i, err))
			}
		}
	}
	if len(problems) > 0 {
		for _, p := range problems {
			fmt.Fprintf(stdout, "%s: %s\n", *path, p)
		}
		fmt.Fprintf(stdout, "%d problem(s)\n", len(problems))
		return exitFail
	}
	fmt.Fprintf(stdout, "%s: ok (%d backends, %d plugins)\n", *path, len(cfg.Backends), len(cfg.Plugins))
	return exitOK
}
