package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/mcp-jupyter/mcp-jupyter/infra/auth"
)

const principalUsage = `Usage: mcp-jupyter principal <command> [flags]

Named tokens for agents and people, each with scopes and its own kernels.
The file <data dir>/principals.json keeps only each token's SHA-256; a
running server notices every change at once (no restart).

Commands:
  add NAME [--scopes read,execute,manage] [--max-kernels N]
                 create a principal and print its token (shown once)
  list           name, scopes, max kernels, created, rotated, revoked
  revoke NAME    stop NAME's token now (open /ws streams close)
  rotate NAME    print a new token for NAME; the old one stops now

Flags:
  --data-dir DIR   the server's data dir ($MCP_DATA_DIR, default ./.mcp-jupyter)

Names: 1 to 64 of a-z 0-9 . _ -, starting with a letter or digit; "admin"
and "oidc:..." are reserved. Scopes: read, execute, manage, admin
(default read,execute,manage). --max-kernels 0 (the default) means the
server's --max-kernels.
`

// runPrincipal dispatches `mcp-jupyter principal <command>`.
func runPrincipal(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] == "help" || args[0] == "--help" || args[0] == "-h" {
		fmt.Fprint(out, principalUsage)
		if len(args) == 0 {
			return errors.New("principal: give a command: add, list, revoke or rotate")
		}
		return nil
	}
	cmd := args[0]
	fs := flag.NewFlagSet("principal "+cmd, flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { fmt.Fprint(out, principalUsage) }
	dataDir := fs.String("data-dir", envOr("MCP_DATA_DIR", "./.mcp-jupyter"), "the server's data dir ($MCP_DATA_DIR)")
	var scopesFlag *string
	var maxKernels *int
	if cmd == "add" {
		scopesFlag = fs.String("scopes", auth.DefaultScopes.String(), "comma-separated: read, execute, manage, admin")
		maxKernels = fs.Int("max-kernels", 0, "kernels this principal may run at once (0: the server's --max-kernels)")
	}
	pos, err := parseInterleaved(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return errHelp
		}
		return err
	}
	store := auth.Store{Dir: *dataDir}
	needName := func() (string, error) {
		if len(pos) != 1 {
			return "", fmt.Errorf("principal %s: give exactly one NAME (got %d arguments)", cmd, len(pos))
		}
		return pos[0], nil
	}
	switch cmd {
	case "add":
		name, err := needName()
		if err != nil {
			return err
		}
		scopes, err := auth.ParseScopes(*scopesFlag, false)
		if err != nil {
			return fmt.Errorf("--scopes: %w", err)
		}
		if scopes == 0 {
			return errors.New("--scopes is empty: give at least one of read, execute, manage, admin")
		}
		tok, err := store.Add(name, scopes, *maxKernels)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "added principal %q (scopes %s). Its token, shown this once (only its hash is kept):\n%s\n", name, scopes, tok)
		fmt.Fprintf(out, "A person opens the web console with it at %s (on the server's --addr)\n", consoleURL(envOr("MCP_ADDR", "127.0.0.1:3000"), tok))
		return nil
	case "list":
		if len(pos) != 0 {
			return fmt.Errorf("principal list takes no arguments (got %q)", strings.Join(pos, " "))
		}
		recs, err := store.List()
		if err != nil {
			return err
		}
		return printPrincipals(out, recs)
	case "revoke":
		name, err := needName()
		if err != nil {
			return err
		}
		if err := store.Revoke(name); err != nil {
			return err
		}
		fmt.Fprintf(out, "revoked principal %q: its token stops working now on a running server; its kernels keep running (an admin may shut them down)\n", name)
		return nil
	case "rotate":
		name, err := needName()
		if err != nil {
			return err
		}
		tok, err := store.Rotate(name)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "rotated principal %q: the old token stops working now. The new token, shown this once:\n%s\n", name, tok)
		fmt.Fprintf(out, "A person opens the web console with it at %s (on the server's --addr)\n", consoleURL(envOr("MCP_ADDR", "127.0.0.1:3000"), tok))
		return nil
	}
	fmt.Fprint(out, principalUsage)
	return fmt.Errorf("principal: unknown command %q: give add, list, revoke or rotate", cmd)
}

// parseInterleaved parses flags wherever they stand among the positional
// arguments (`add alice --scopes read` and `add --scopes read alice`).
func parseInterleaved(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos, args = append(pos, args[0]), args[1:]
	}
}

func printPrincipals(out io.Writer, recs []auth.Record) error {
	if len(recs) == 0 {
		_, err := fmt.Fprintln(out, "no principals: add one with `mcp-jupyter principal add NAME` (the data dir's token is the admin)")
		return err
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "NAME\tSCOPES\tMAX KERNELS\tCREATED\tROTATED\tSTATUS")
	when := func(t time.Time) string {
		if t.IsZero() {
			return "-"
		}
		return t.UTC().Format(time.RFC3339)
	}
	for _, r := range recs {
		maxK := "server's"
		if r.MaxKernels > 0 {
			maxK = fmt.Sprint(r.MaxKernels)
		}
		status := "active"
		if !r.Active() {
			status = "revoked " + when(r.Revoked)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Name, r.Scopes, maxK, when(r.Created), when(r.Rotated), status)
	}
	return tw.Flush()
}

// checkPrincipals is doctor's line for the principals file: a file the
// server could not read stops its start.
func checkPrincipals(dataDir string) finding {
	recs, err := auth.Store{Dir: dataDir}.List()
	if err != nil {
		return finding{Check: "principals", Detail: err.Error(),
			Fix: "fix the file by hand (it names the entry and field) or restore it from a backup; deleting it revokes every principal"}
	}
	active := 0
	for _, r := range recs {
		if r.Active() {
			active++
		}
	}
	return finding{Check: "principals", OK: true, Detail: fmt.Sprintf("%d active, %d revoked (the data dir's token is the admin)", active, len(recs)-active)}
}
