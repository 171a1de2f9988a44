package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/plugin"
)

// problem is one error or warning of validate -json.
type problem struct {
	Line    int    `json:"line,omitempty"`
	Column  int    `json:"column,omitempty"`
	Path    string `json:"path,omitempty"`
	Message string `json:"message"`
}

// validateReport is the output of validate -json.
type validateReport struct {
	File     string    `json:"file"`
	Valid    bool      `json:"valid"`
	Backends int       `json:"backends"`
	Plugins  int       `json:"plugins"`
	Errors   []problem `json:"errors"`
	Warnings []problem `json:"warnings"`
}

func validateCmd(args []string, stdout, stderr io.Writer) int {
	fs := newFlagSet("validate", "", "Check a configuration file without starting anything, and report every problem\nat once, each with its file:line:column and path, then the warnings: what\nserves but is probably not meant. Exits 1 when there are errors.", stdout, stderr)
	path := fs.String("config", "tracegate.yaml", "configuration `file`; ${VAR} in values is expanded from the environment")
	asJSON := fs.Bool("json", false, "print one JSON object: file, valid, errors and warnings with line, column, path and message")
	if code, done := parseFlags(fs, args); done {
		return code
	}
	data, err := os.ReadFile(*path)
	if err != nil {
		fmt.Fprintf(stderr, "tracegate validate: %v\n", err)
		return exitFail
	}
	r := config.Check(data, os.Getenv)
	rep := validateReport{File: *path, Errors: checkErrors(r), Warnings: []problem{}}
	if cfg := r.Config; cfg != nil {
		rep.Backends, rep.Plugins = len(cfg.Backends), len(cfg.Plugins)
	}
	for _, w := range r.Warnings {
		rep.Warnings = append(rep.Warnings, problem{w.Line, w.Column, w.Path, w.Msg})
	}
	rep.Valid = len(rep.Errors) == 0

	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		enc.Encode(rep)
	} else {
		for _, p := range rep.Errors {
			fmt.Fprintln(stdout, p.format(*path, ""))
		}
		for _, p := range rep.Warnings {
			fmt.Fprintln(stdout, p.format(*path, "warning: "))
		}
		if rep.Valid {
			fmt.Fprintf(stdout, "%s: ok (%d backends, %d plugins, %d warnings)\n", *path, rep.Backends, rep.Plugins, len(rep.Warnings))
		} else {
			fmt.Fprintf(stdout, "%d errors, %d warnings\n", len(rep.Errors), len(rep.Warnings))
		}
	}
	if !rep.Valid {
		return exitFail
	}
	return exitOK
}

// checkErrors is every error of a checked file, those of each plugin
// type's own options included, in the order validate prints them.
func checkErrors(r *config.Result) []problem {
	out := []problem{}
	for _, e := range r.Errors {
		out = append(out, problem{e.Line, e.Column, e.Path, e.Msg})
	}
	if cfg := r.Config; cfg != nil {
		// Each plugin type checks its own options.
		for i, p := range cfg.Plugins {
			if err := plugin.Validate(p); err != nil {
				path, msg := "plugins["+strconv.Itoa(i)+"]", err.Error()
				// "rate: invalid rate" belongs to plugins[i].rate.
				if key, rest, ok := strings.Cut(msg, ": "); ok && p.Options[key] != nil {
					path, msg = path+"."+key, rest
				}
				line, col := r.Position(path)
				out = append(out, problem{line, col, path, msg})
			}
		}
	}
	return out
}

// format writes a problem as compilers do, file:line:column: message, so
// editors can jump to it.
func (p problem) format(file, kind string) string {
	at := file
	if p.Line > 0 {
		at += ":" + strconv.Itoa(p.Line)
		if p.Column > 0 {
			at += ":" + strconv.Itoa(p.Column)
		}
	}
	msg := p.Message
	if p.Path != "" {
		msg = p.Path + ": " + msg
	}
	return at + ": " + kind + msg
}
