// Command files is the file-store demo MCP server over stdio.
//
//	tracegate's config: command: [go, run, ./examples/files]
package main

import (
	"context"
	"log"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/examples/demo"
)

func main() {
	if err := demo.NewFilesServer().Run(context.Background(), &mcp.StdioTransport{}); err != nil {
		log.Fatal(err)
	}
}
