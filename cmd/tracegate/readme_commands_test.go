package main

import (
	"bufio"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
)

// Every tracegate command in the README's shell examples names a
// subcommand that exists and only flags that subcommand documents in its
// -h, so an example cannot go stale when a flag is renamed. (The examples
// that talk to a running gateway are run by their own tests: the demo,
// probe, reload and connect tests.)
func TestReadmeCommandsUseRealFlags(t *testing.T) {
	f, err := os.Open("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmdRe := regexp.MustCompile(`(?:^|[\s;&|(])(?:tracegate|go run \./cmd/tracegate)\s+(serve|stdio|demo|probe|validate|version)\b(.*)`)
	flagRe := regexp.MustCompile(`(?:^|\s)(-[a-z][a-z0-9-]*)`)
	help := map[string]string{}
	var inShell bool
	var checked int
	sc := bufio.NewScanner(f)
	for line := 1; sc.Scan(); line++ {
		text := sc.Text()
		if strings.HasPrefix(text, "```") {
			lang := strings.TrimPrefix(text, "```")
			inShell = !inShell && (lang == "sh" || lang == "bash" || lang == "console" || lang == "shell")
			continue
		}
		if !inShell {
			continue
		}
		if i := strings.Index(text, " #"); i >= 0 {
			text = text[:i] // a comment
		}
		m := cmdRe.FindStringSubmatch(text)
		if m == nil {
			continue
		}
		sub, rest := m[1], m[2]
		h, ok := help[sub]
		if !ok {
			out, err := exec.Command(selfBin, sub, "-h").CombinedOutput()
			if err != nil {
				t.Fatalf("README line %d: tracegate %s -h: %v\n%s", line, sub, err, out)
			}
			h = string(out)
			help[sub] = h
		}
		// Quoted arguments are values, not flags.
		rest = regexp.MustCompile(`'[^']*'|"[^"]*"`).ReplaceAllString(rest, "")
		for _, fm := range flagRe.FindAllStringSubmatch(rest, -1) {
			flag := fm[1]
			if !regexp.MustCompile(`(?m)^\s+` + regexp.QuoteMeta(flag) + `\b`).MatchString(h) {
				t.Errorf("README line %d: tracegate %s %s: the subcommand has no such flag", line, sub, flag)
			}
		}
		checked++
	}
	if checked < 5 {
		t.Fatalf("found only %d tracegate commands in the README's shell examples; is the parser broken?", checked)
	}
}
