package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"testing"
)

func TestSubcommandHelp(t *testing.T) {
	tests := []struct {
		cmd   string
		flags []string
	}{
		{"serve", []string{"-config"}},
		{"stdio", []string{"-config"}},
		{"validate", []string{"-config", "-json"}},
		{"demo", []string{"-listen", "-admin", "-traffic", "-http-spans", "-log", "-replicas"}},
		{"probe", []string{"-tool", "-args", "-json", "-interval"}},
		{"version", nil},
	}
	for _, tc := range tests {
		for _, h := range []string{"-h", "-help", "--help"} {
			t.Run(tc.cmd+h, func(t *testing.T) {
				var stdout, stderr bytes.Buffer
				if code := run([]string{tc.cmd, h}, &stdout, &stderr); code != exitOK {
					t.Fatalf("exit code %d, want 0; stderr:\n%s", code, stderr.String())
				}
				if stderr.Len() > 0 {
					t.Errorf("help wrote to stderr:\n%s", stderr.String())
				}
				out := stdout.String()
				if !strings.Contains(out, "usage: tracegate "+tc.cmd) {
					t.Errorf("help does not start with its usage line:\n%s", out)
				}
				for _, f := range tc.flags {
					if !strings.Contains(out, f) {
						t.Errorf("help does not document %s:\n%s", f, out)
					}
				}
			})
		}
	}
}

func TestUsageErrorsExit2(t *testing.T) {
	for _, args := range [][]string{
		{},
		{"nosuchcommand"},
		{"serve", "-nosuchflag"},
		{"validate", "extra-argument"},
		{"demo", "-traffic=maybe"},
		{"demo", "-replicas", "0"},
		{"demo", "-replicas", "-2"},
		{"demo", "-replicas", "17"},
		{"demo", "-replicas", "three"},
		{"version", "-x"},
	} {
		var stdout, stderr bytes.Buffer
		if code := run(args, &stdout, &stderr); code != exitUsage {
			t.Errorf("tracegate %q: exit code %d, want %d", args, code, exitUsage)
		}
		if !strings.Contains(stderr.String(), "usage: tracegate") {
			t.Errorf("tracegate %q: no usage on stderr:\n%s", args, stderr.String())
		}
	}
}

func TestReadBuildInfo(t *testing.T) {
	bi := &debug.BuildInfo{
		GoVersion: "go1.26.8",
		Main:      debug.Module{Path: "github.com/tracegate/tracegate", Version: "v1.2.3"},
		Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "0123456789abcdef0123456789abcdef01234567"},
			{Key: "vcs.time", Value: "2026-12-04T21:00:00Z"},
			{Key: "vcs.modified", Value: "true"},
		},
	}
	tests := []struct {
		name    string
		ldflags string
		bi      *debug.BuildInfo
		ok      bool
		want    string
	}{
		{"go install module@version", "", bi, true, "tracegate v1.2.3 (rev 0123456789abcdef0123456789abcdef01234567+modified, 2026-12-04T21:00:00Z, go1.26.8)"},
		{"ldflags win", "v1.2.4", bi, true, "tracegate v1.2.4 (rev 0123456789abcdef0123456789abcdef01234567+modified, 2026-12-04T21:00:00Z, go1.26.8)"},
		{"no build info", "", nil, false, "tracegate (devel)"},
		{"no vcs", "", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, true, "tracegate (devel) (go1.26.8)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := readBuildInfo(tc.ldflags, tc.bi, tc.ok).String(); got != tc.want {
				t.Errorf("got %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestVersionFromCheckout builds the command with VCS stamping, as a
// build from a clone does, and checks that version prints the commit.
func TestVersionFromCheckout(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the command")
	}
	rev, err := exec.Command("git", "rev-parse", "HEAD").Output()
	if err != nil {
		t.Skipf("not a git checkout: %v", err)
	}
	if fi, err := os.Stat("../../.git"); err == nil && !fi.IsDir() {
		// The go command stamps no VCS information in a git worktree,
		// whose .git is a file; a clone, as in CI, has a directory.
		t.Skip("a git worktree")
	}
	bin := filepath.Join(t.TempDir(), "tracegate")
	build := exec.Command("go", "build", "-buildvcs=true", "-o", bin, ".")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build -buildvcs=true: %v\n%s", err, out)
	}
	out, err := exec.Command(bin, "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(rev)); !strings.Contains(string(out), "rev "+want) {
		t.Errorf("version printed %q, want the revision %s", out, want)
	}
	if !strings.HasPrefix(string(out), "tracegate v") {
		t.Errorf("version printed %q, want a module version (a tag or a pseudo-version)", out)
	}
}

func writeFile(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestValidateReportsEverythingAtOnce: decoding, validation and plugin
// errors in one run, each at file:line:column, then the warnings.
func TestValidateReportsEverythingAtOnce(t *testing.T) {
	t.Setenv("TRACEGATE_TEST_UNSET", "")
	path := writeFile(t, "bad.yaml", `admin_listen: 0.0.0.0:8418
max_request_bytes: lots
auth:
  bearer_tokens: ["${TRACEGATE_TEST_UNSET}"]
backends:
  - name: Weather
    url: weather/mcp
plugins:
  - {name: r, type: ratelimit, rate: fast}
`)
	var stdout, stderr bytes.Buffer
	if code := run([]string{"validate", "-config", path}, &stdout, &stderr); code != exitFail {
		t.Errorf("exit code %d, want %d", code, exitFail)
	}
	want := strings.Join([]string{
		path + ":2:20: max_request_bytes: want an integer",
		path + ":4:19: auth.bearer_tokens[0]: empty token (${TRACEGATE_TEST_UNSET} unset or empty)",
		path + `:6:11: backends[0].name: "Weather" must match [a-z0-9_-]+`,
		path + ":7:10: backends[0].url: missing scheme",
		path + `:9:38: plugins[0].rate: invalid rate "fast": want a positive count per s, m or h, e.g. "20/s"`,
		"5 errors, 0 warnings",
	}, "\n") + "\n"
	if got := stdout.String(); got != want {
		t.Errorf("got:\n%s\nwant:\n%s", got, want)
	}

	stdout.Reset()
	if code := run([]string{"validate", "-json", "-config", path}, &stdout, &stderr); code != exitFail {
		t.Errorf("-json: exit code %d, want %d", code, exitFail)
	}
	var rep validateReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		t.Fatalf("-json output: %v\n%s", err, stdout.String())
	}
	if rep.Valid || len(rep.Errors) != 5 || rep.Errors[4] != (problem{9, 38, "plugins[0].rate", `invalid rate "fast": want a positive count per s, m or h, e.g. "20/s"`}) {
		t.Errorf("-json: got %+v", rep)
	}
}

func TestValidateWarningsAndEmptyFile(t *testing.T) {
	tests := []struct {
		name, content string
		code          int
		want          string
	}{
		{"empty", "", exitFail, "{{.}}:1:1: empty file: want a mapping of settings, such as backends\n1 errors, 0 warnings\n"},
		{"warnings only", "admin_listen: 0.0.0.0:8418\nbackends: []\n", exitOK,
			"{{.}}:2:11: warning: backends: no backends: the gateway will serve no tools, prompts or resources\n" +
				"{{.}}:1:15: warning: admin_listen: binds beyond loopback and no admin.bearer_tokens or auth.bearer_tokens are set: anyone who reaches it can read traces, metrics and the configuration\n" +
				"{{.}}: ok (0 backends, 0 plugins, 2 warnings)\n"},
		{"clean", "backends: [{name: files, command: [./files]}]\n", exitOK, "{{.}}: ok (1 backends, 0 plugins, 0 warnings)\n"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := writeFile(t, "tracegate.yaml", tc.content)
			var stdout, stderr bytes.Buffer
			if code := run([]string{"validate", "-config", path}, &stdout, &stderr); code != tc.code {
				t.Errorf("exit code %d, want %d; stderr %s", code, tc.code, stderr.String())
			}
			if want := strings.ReplaceAll(tc.want, "{{.}}", path); stdout.String() != want {
				t.Errorf("got:\n%s\nwant:\n%s", stdout.String(), want)
			}
		})
	}
}
