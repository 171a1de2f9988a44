package plugin_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/tracegate/tracegate/internal/config"
	"github.com/tracegate/tracegate/internal/plugin"
)

// A chain built from tracegate.yaml: one plugin denies deletes, another
// scrubs e-mail addresses from what reaches the backend.
func ExampleNew() {
	cfg, err := config.Parse([]byte(`
backends: [{name: files, url: "http://127.0.0.1:9001/mcp"}]
plugins:
  - {name: no-deletes, type: deny, tools: ["files_delete*"]}
  - {name: scrub, type: redact, patterns: [email], apply_to: [arguments]}
`), func(string) string { return "" })
	if err != nil {
		log.Fatal(err)
	}
	chain, err := plugin.New(cfg.Plugins, plugin.Options{})
	if err != nil {
		log.Fatal(err)
	}
	ctx := context.Background()

	_, err = chain.Run(ctx, &plugin.Call{Hook: plugin.ToolPreInvoke, Backend: "files", Name: "files_delete_all"})
	fmt.Println(err)
	fmt.Println(plugin.RPCError(err).Code == plugin.CodeDenied)

	res, err := chain.Run(ctx, &plugin.Call{
		Hook: plugin.ToolPreInvoke, Backend: "files", Name: "files_share",
		Arguments: json.RawMessage(`{"path":"/q3.pdf","with":"ann@example.com"}`),
	})
	fmt.Println(string(res.Arguments), res.Modified, err)
	// Output:
	// denied by plugin "no-deletes": tool "files_delete_all" matches "files_delete*"
	// true
	// {"path":"/q3.pdf","with":"[REDACTED]"} true <nil>
}

// Validate checks one plugin entry; each error names its key, for the
// validate command to print with the entry's path.
func ExampleValidate() {
	err := plugin.Validate(config.Plugin{
		Name: "per-session", Type: "ratelimit",
		Options: map[string]any{"rate": "20/d", "burts": 40},
	})
	fmt.Println(err)
	// Output:
	// burts: unknown key for this plugin type
	// rate: invalid rate "20/d": want a positive count per s, m or h, e.g. "20/s"
}
