// Command stdioserver is the go-sdk peer of package conn's stdio tests,
// with tools of its own for a child's life: exit, spawn (a grandchild),
// and -ignore-term to make SIGKILL necessary.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/modelcontextprotocol/go-sdk/mcp"

	"github.com/tracegate/tracegate/internal/conn/internal/peer"
)

type exitIn struct {
	Code int `json:"code"`
}

func main() {
	ignoreTerm := flag.Bool("ignore-term", false, "ignore SIGTERM and stdin EOF")
	flag.Parse()
	if *ignoreTerm {
		signal.Ignore(syscall.SIGTERM)
	}
	fmt.Fprintf(os.Stderr, "started pid %d env %s\n", os.Getpid(), os.Getenv("PEER_GREETING"))
	s := peer.New()
	mcp.AddTool(s, &mcp.Tool{Name: "exit"}, func(_ context.Context, _ *mcp.CallToolRequest, in exitIn) (*mcp.CallToolResult, peer.None, error) {
		fmt.Fprintln(os.Stderr, "exiting on request")
		os.Exit(in.Code)
		return nil, peer.None{}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "spawn"}, func(context.Context, *mcp.CallToolRequest, peer.None) (*mcp.CallToolResult, peer.None, error) {
		cmd := exec.Command("sleep", "300")
		if err := cmd.Start(); err != nil {
			return nil, peer.None{}, err
		}
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: strconv.Itoa(cmd.Process.Pid)}}}, peer.None{}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "cwd"}, func(context.Context, *mcp.CallToolRequest, peer.None) (*mcp.CallToolResult, peer.None, error) {
		wd, _ := os.Getwd()
		return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: wd}}}, peer.None{}, nil
	})
	err := s.Run(context.Background(), &mcp.StdioTransport{})
	if *ignoreTerm {
		select {} // outlive stdin's end too
	}
	if err != nil {
		log.Fatal(err)
	}
}
