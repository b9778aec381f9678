// Package mcpserver is the MCP edge of mcp-jupyter (mcp-go): the tools agents
// call, over stdio and Streamable HTTP, in front of a Backend.
package mcpserver
