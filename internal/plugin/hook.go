package plugin

// Hook names a point in a request where the chain runs.
type Hook string

const (
	ToolPreInvoke     Hook = "tool_pre_invoke"     // before tools/call is forwarded
	ToolPostInvoke    Hook = "tool_post_invoke"    // after the backend answered tools/call
	PromptPreFetch    Hook = "prompt_pre_fetch"    // before prompts/get is forwarded
	PromptPostFetch   Hook = "prompt_post_fetch"   // after the backend answered prompts/get
	ResourcePreFetch  Hook = "resource_pre_fetch"  // before resources/read is forwarded
	ResourcePostFetch Hook = "resource_post_fetch" // after the backend answered resources/read
)

// allHooks lists every hook in a fixed order; a hook's position is its index
// into Chain.byHook.
var allHooks = [...]Hook{ToolPreInvoke, ToolPostInvoke, PromptPreFetch, PromptPostFetch, ResourcePreFetch, ResourcePostFetch}

// preHooks and postHooks are the usual answers of Hooks().
var (
	preHooks  = []Hook{ToolPreInvoke, PromptPreFetch, ResourcePreFetch}
	postHooks = []Hook{ToolPostInvoke, PromptPostFetch, ResourcePostFetch}
)

// index returns the hook's position in allHooks.
func (h Hook) index() (int, bool) {
	switch h {
	case ToolPreInvoke:
		return 0, true
	case ToolPostInvoke:
		return 1, true
	case PromptPreFetch:
		return 2, true
	case PromptPostFetch:
		return 3, true
	case ResourcePreFetch:
		return 4, true
	case ResourcePostFetch:
		return 5, true
	}
	return 0, false
}

// Pre reports whether the hook runs before the backend is called, where
// plugins see and may rewrite the arguments; post hooks see the result.
func (h Hook) Pre() bool {
	return h == ToolPreInvoke || h == PromptPreFetch || h == ResourcePreFetch
}

// Kind is what the hook's Call.Name names: "tool", "prompt" or "resource".
func (h Hook) Kind() string {
	switch h {
	case ToolPreInvoke, ToolPostInvoke:
		return "tool"
	case PromptPreFetch, PromptPostFetch:
		return "prompt"
	case ResourcePreFetch, ResourcePostFetch:
		return "resource"
	}
	return "call"
}

// Decision is what a plugin says about a call.
type Decision int

const (
	// Continue lets the call go on unchanged.
	Continue Decision = iota
	// Modify replaces the arguments (pre hooks) or the result (post hooks);
	// the next plugin sees the new value.
	Modify
	// Deny refuses the call; later plugins do not run.
	Deny
)

// String gives the plugin.decision attribute value.
func (d Decision) String() string {
	switch d {
	case Continue:
		return "continue"
	case Modify:
		return "modify"
	case Deny:
		return "deny"
	}
	return "unknown"
}
