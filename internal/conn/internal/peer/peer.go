// Package peer is the go-sdk MCP server that package conn's tests talk to
// over all three transports: in process over HTTP, and as a child process
// (testdata/stdioserver) over stdio.
package peer

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/modelcontextprotocol/go-sdk/mcp"
)

type (
	EchoIn struct {
		Text string `json:"text"`
	}
	ProgressIn struct {
		Count int `json:"count"`
	}
	SleepIn struct {
		MS int `json:"ms"`
	}
	BigIn struct {
		Bytes int `json:"bytes"`
	}
	None struct{}
)

// New returns a server with tools that exercise a transport: echo,
// progress (notifications on the call's stream before its result), sample
// (a request to the client before the result), sleep and big.
func New() *mcp.Server {
	s := mcp.NewServer(&mcp.Implementation{Name: "conn-peer", Version: "1"}, nil)
	mcp.AddTool(s, &mcp.Tool{Name: "echo"}, func(_ context.Context, _ *mcp.CallToolRequest, in EchoIn) (*mcp.CallToolResult, None, error) {
		return text(in.Text), None{}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "progress"}, func(ctx context.Context, req *mcp.CallToolRequest, in ProgressIn) (*mcp.CallToolResult, None, error) {
		for i := 1; i <= in.Count; i++ {
			err := req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{
				ProgressToken: req.Params.GetProgressToken(), Progress: float64(i), Total: float64(in.Count),
			})
			if err != nil {
				return nil, None{}, err
			}
		}
		return text(fmt.Sprintf("sent %d", in.Count)), None{}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "sample"}, func(ctx context.Context, req *mcp.CallToolRequest, in EchoIn) (*mcp.CallToolResult, None, error) {
		res, err := req.Session.CreateMessage(ctx, &mcp.CreateMessageParams{
			Messages:  []*mcp.SamplingMessage{{Role: "user", Content: &mcp.TextContent{Text: in.Text}}},
			MaxTokens: 10,
		})
		if err != nil {
			return nil, None{}, err
		}
		t, _ := res.Content.(*mcp.TextContent)
		if t == nil {
			return nil, None{}, fmt.Errorf("sampling returned %T", res.Content)
		}
		return text("sampled: " + t.Text), None{}, nil
	})
	// cut closes the call's stream after one notification (SEP-1699), then
	// sends another and its result, which a client reads on resuming.
	mcp.AddTool(s, &mcp.Tool{Name: "cut"}, func(ctx context.Context, req *mcp.CallToolRequest, in SleepIn) (*mcp.CallToolResult, None, error) {
		notify := func(i int) error {
			return req.Session.NotifyProgress(ctx, &mcp.ProgressNotificationParams{ProgressToken: req.Params.GetProgressToken(), Progress: float64(i)})
		}
		if err := notify(1); err != nil {
			return nil, None{}, err
		}
		if req.Extra == nil || req.Extra.CloseSSEStream == nil {
			return nil, None{}, fmt.Errorf("this transport cannot close a stream")
		}
		req.Extra.CloseSSEStream(mcp.CloseSSEStreamArgs{RetryAfter: time.Duration(in.MS) * time.Millisecond})
		time.Sleep(2 * time.Duration(in.MS) * time.Millisecond)
		if err := notify(2); err != nil {
			return nil, None{}, err
		}
		return text("after the cut"), None{}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "sleep"}, func(ctx context.Context, _ *mcp.CallToolRequest, in SleepIn) (*mcp.CallToolResult, None, error) {
		select {
		case <-time.After(time.Duration(in.MS) * time.Millisecond):
		case <-ctx.Done():
			return nil, None{}, ctx.Err()
		}
		return text("slept"), None{}, nil
	})
	mcp.AddTool(s, &mcp.Tool{Name: "big"}, func(_ context.Context, _ *mcp.CallToolRequest, in BigIn) (*mcp.CallToolResult, None, error) {
		return text(strings.Repeat("x", in.Bytes)), None{}, nil
	})
	return s
}

func text(s string) *mcp.CallToolResult {
	return &mcp.CallToolResult{Content: []mcp.Content{&mcp.TextContent{Text: s}}}
}
