package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"strings"
	"time"
)

// setting is one configuration knob: a flag and the environment variable
// that gives its default. NB: flag and variable names are public API.
type setting struct {
	flag, env, def, help string
}

// serveSettings lists serve's configuration; --help, the README table and
// parsing all come from it.
func serveSettings() []setting {
	return []setting{
		{"data-dir", "MCP_DATA_DIR", "./.mcp-jupyter", "directory holding the event log (events/) and everything the server keeps"},
		{"addr", "MCP_ADDR", "127.0.0.1:3000", "host:port of the HTTP server (/health, /livez, /readyz; /mcp later)"},
		{"nats-listen", "MCP_NATS_LISTEN", "", "host:port for the embedded NATS server to listen on; empty = in-process only"},
		{"nats-token", "MCP_NATS_TOKEN", "", "token NATS clients must present; required when --nats-listen is not loopback"},
		{"log-format", "MCP_LOG_FORMAT", "", "log format, json or text (default: text on a terminal, json otherwise)"},
		{"log-level", "MCP_LOG_LEVEL", "info", "log level: debug, info, warn or error"},
		{"shutdown-grace", "MCP_SHUTDOWN_GRACE", "25s", "how long a graceful shutdown may take after SIGINT/SIGTERM"},
	}
}

// config is serve's parsed configuration.
type config struct {
	DataDir       string
	Addr          string
	NATSListen    string
	NATSToken     string
	LogFormat     string
	LogLevel      string
	ShutdownGrace time.Duration
}

// parseServe reads serve's flags over its environment variables over the
// defaults.
func parseServe(args []string, getenv func(string) string, out io.Writer) (config, error) {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(out)
	fs.Usage = func() { printServeHelp(out) }
	vals := map[string]*string{}
	for _, s := range serveSettings() {
		def := s.def
		if v := getenv(s.env); v != "" {
			def = v
		}
		vals[s.flag] = fs.String(s.flag, def, s.help)
	}
	if err := fs.Parse(args); err != nil {
		return config{}, err
	}
	if fs.NArg() > 0 {
		return config{}, fmt.Errorf("serve takes no arguments, got %q", fs.Args())
	}
	c := config{DataDir: *vals["data-dir"], Addr: *vals["addr"], NATSListen: *vals["nats-listen"],
		NATSToken: *vals["nats-token"], LogFormat: *vals["log-format"], LogLevel: *vals["log-level"]}
	grace, err := time.ParseDuration(*vals["shutdown-grace"])
	if err != nil || grace <= 0 {
		return config{}, fmt.Errorf("--shutdown-grace %q: want a positive duration such as 25s", *vals["shutdown-grace"])
	}
	c.ShutdownGrace = grace
	switch c.LogFormat {
	case "", "json", "text":
	default:
		return config{}, fmt.Errorf("--log-format %q: want json or text", c.LogFormat)
	}
	if _, err := parseLevel(c.LogLevel); err != nil {
		return config{}, err
	}
	if c.DataDir == "" {
		return config{}, errors.New("--data-dir must not be empty")
	}
	return c, nil
}

func printServeHelp(w io.Writer) {
	fmt.Fprintf(w, `Usage: mcp-jupyter serve [flags]

Runs the server: opens the event log in the data dir, rebuilds the read
models, starts the embedded NATS server and serves HTTP. SIGINT or SIGTERM
shut it down gracefully; a second signal exits at once.

Every flag can also be set through its environment variable; a flag given on
the command line wins.

`)
	for _, s := range serveSettings() {
		def := s.def
		if def == "" {
			def = `""`
		}
		fmt.Fprintf(w, "  --%-16s $%-20s default %s\n      %s\n", s.flag, s.env, def, s.help)
	}
	fmt.Fprintln(w)
	fmt.Fprintln(w, strings.TrimSpace(`
Exit status: 0 after a clean shutdown, 1 on error (for example when another
server holds the data dir), 2 on bad usage.`))
}
