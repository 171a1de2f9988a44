package demo

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

// NewFilesServer returns the stdio demo server: a small read-only file
// store with list_files, read_file, whoami (its process id, so tests can
// kill it) and a file:// resource template.
func NewFilesServer() *mcp.Server {
	files := map[string]string{
		"notes/todo.md":   "- book flights\n- check the weather\n",
		"notes/ideas.md":  "- trace every tool call\n",
		"reports/q3.csv":  "region,revenue\nemea,120\namer,340\n",
		"reports/q4.csv":  "region,revenue\nemea,150\namer,360\n",
		"config/app.yaml": "retries: 3\n",
	}
	s := mcp.NewServer(&mcp.Implementation{Name: "files-demo", Version: "1.0.0"}, nil)
	type listArgs struct {
		Prefix string `json:"prefix,omitempty" jsonschema:"only paths starting with this"`
	}
	type listOut struct {
		Paths []string `json:"paths"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "list_files", Description: "List stored files."},
		func(ctx context.Context, req *mcp.CallToolRequest, in listArgs) (*mcp.CallToolResult, listOut, error) {
			out := listOut{Paths: []string{}}
			for p := range files {
				if strings.HasPrefix(p, in.Prefix) {
					out.Paths = append(out.Paths, p)
				}
			}
			sort.Strings(out.Paths)
			return nil, out, nil
		})
	type readArgs struct {
		Path string `json:"path" jsonschema:"the file path"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "read_file", Description: "Read a stored file."},
		func(ctx context.Context, req *mcp.CallToolRequest, in readArgs) (*mcp.CallToolResult, any, error) {
			body, ok := files[in.Path]
			if !ok {
				return &mcp.CallToolResult{IsError: true, Content: []mcp.Content{&mcp.TextContent{Text: "no such file: " + in.Path}}}, nil, nil
			}
			return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: body}}}, nil, nil
		})
	type whoOut struct {
		PID int `json:"pid"`
	}
	mcp.AddTool(s, &mcp.Tool{Name: "whoami", Description: "The server's process id."},
		func(ctx context.Context, req *mcp.CallToolRequest, _ struct{}) (*mcp.CallToolResult, whoOut, error) {
			return nil, whoOut{PID: os.Getpid()}, nil
		})
	s.AddResourceTemplate(&mcp.ResourceTemplate{URITemplate: "file:///{+path}", Name: "file", MIMEType: "text/plain"},
		func(ctx context.Context, req *mcp.ReadResourceRequest) (*mcp.ReadResourceResult, error) {
			p := strings.TrimPrefix(req.Params.URI, "file:///")
			body, ok := files[p]
			if !ok {
				return nil, mcp.ResourceNotFoundError(req.Params.URI)
			}
			return &mcp.ReadResourceResult{Contents: []*mcp.ResourceContents{{URI: req.Params.URI, MIMEType: "text/plain", Text: body}}}, nil
		})
	s.AddPrompt(&mcp.Prompt{Name: "summarize_file", Arguments: []*mcp.PromptArgument{{Name: "path", Required: true}}},
		func(ctx context.Context, req *mcp.GetPromptRequest) (*mcp.GetPromptResult, error) {
			return &mcp.GetPromptResult{Messages: []*mcp.PromptMessage{{Role: "user", Content: &mcp.TextContent{Text: fmt.Sprintf("Summarize %s", req.Params.Arguments["path"])}}}}, nil
		})
	return s
}
