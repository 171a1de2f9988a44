package plugin

import (
	"context"
	"errors"
	"fmt"

	"github.com/tracegate/tracegate/internal/config"
)

// maxSizePlugin denies calls whose arguments or results are larger than
// the operator allows. It only measures: no JSON is decoded.
type maxSizePlugin struct {
	maxArgs, maxResult int64 // 0: no limit
	hooks              []Hook
}

func newMaxSize(cfg config.Plugin, _ Options) (Plugin, error) {
	o := newOptions(cfg.Options)
	p := &maxSizePlugin{}
	p.maxArgs, _ = o.size("max_argument_bytes")
	p.maxResult, _ = o.size("max_result_bytes")
	if err := o.err(); err != nil {
		return nil, err
	}
	if p.maxArgs == 0 && p.maxResult == 0 {
		return nil, &FieldError{Key: "max_argument_bytes", Err: errors.New("set max_argument_bytes, max_result_bytes or both")}
	}
	if p.maxArgs > 0 {
		// Resource reads carry no arguments.
		p.hooks = append(p.hooks, ToolPreInvoke, PromptPreFetch)
	}
	if p.maxResult > 0 {
		p.hooks = append(p.hooks, postHooks...)
	}
	return p, nil
}

func (p *maxSizePlugin) Hooks() []Hook { return p.hooks }

func (p *maxSizePlugin) Handle(_ context.Context, call *Call) (Outcome, error) {
	if call.Hook.Pre() {
		if n := int64(len(call.Arguments)); p.maxArgs > 0 && n > p.maxArgs {
			return Outcome{Decision: Deny, Reason: fmt.Sprintf("arguments are %d bytes, over the limit of %d bytes", n, p.maxArgs)}, nil
		}
		return Outcome{}, nil
	}
	if n := int64(len(call.Result)); p.maxResult > 0 && n > p.maxResult {
		return Outcome{Decision: Deny, Reason: fmt.Sprintf("result is %d bytes, over the limit of %d bytes", n, p.maxResult)}, nil
	}
	return Outcome{}, nil
}
