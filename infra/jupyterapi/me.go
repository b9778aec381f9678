package jupyterapi

import (
	"encoding/json"
	"net/http"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

// identity is jupyter_server's identity model of a user. Fields it leaves
// undefined for a user known by name only are null.
type identity struct {
	Username    string  `json:"username"`
	Name        string  `json:"name"`
	DisplayName string  `json:"display_name"`
	Initials    *string `json:"initials"`
	AvatarURL   *string `json:"avatar_url"`
	Color       *string `json:"color"`
}

// resourceScopes maps what jupyter_server's authorizer calls an action on
// a resource to the scope a principal needs for it here: read to look;
// write and execute to run and author code (start kernels, sessions, save
// notebooks), as the MCP tools' execute scope. Resources this server does
// not serve (terminals, server, config, ...) are granted to no one.
var resourceScopes = map[string]bool{
	"api": true, "kernels": true, "kernelspecs": true, "sessions": true, "contents": true, "files": true,
}

var actionScopes = map[string]auth.Scope{
	"read": auth.ScopeRead, "write": auth.ScopeExecute, "execute": auth.ScopeExecute,
}

// me answers GET /api/me: the principal as a Jupyter identity, and, for
// ?permissions={"resource": ["action", ...]}, which of those actions its
// scopes allow (a kernel's owner and shares still decide per kernel).
func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	p, ok := auth.FromContext(r.Context())
	if !ok {
		writeError(w, http.StatusForbidden, "no principal: the Jupyter API is served behind the server's token check")
		return
	}
	asked := map[string][]string{}
	if q := r.URL.Query().Get("permissions"); q != "" {
		const bad = `permissions should be a JSON dict of {"resource": ["action",]}, got `
		var raw map[string]any
		if err := json.Unmarshal([]byte(q), &raw); err != nil {
			writeError(w, http.StatusBadRequest, bad+strconvQuote(q))
			return
		}
		for res, v := range raw {
			list, ok := v.([]any)
			if !ok {
				writeError(w, http.StatusBadRequest, bad+strconvQuote(q))
				return
			}
			actions := make([]string, 0, len(list))
			for _, a := range list {
				name, ok := a.(string)
				if !ok {
					writeError(w, http.StatusBadRequest, bad+strconvQuote(q))
					return
				}
				actions = append(actions, name)
			}
			asked[res] = actions
		}
	}
	perms := map[string][]string{"updatable_fields": {}} // NB: nothing of an identity here is editable
	for res, actions := range asked {
		allowed := []string{}
		for _, a := range actions {
			if need, ok := actionScopes[a]; ok && resourceScopes[res] && p.Scopes.Has(need) {
				allowed = append(allowed, a)
			}
		}
		perms[res] = allowed
	}
	writeJSON(w, http.StatusOK, map[string]any{
		"identity":    identity{Username: p.Name, Name: p.Name, DisplayName: p.Name},
		"permissions": perms,
	})
}

func strconvQuote(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
