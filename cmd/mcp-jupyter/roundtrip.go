package main

import (
	"crypto/hmac"
	"crypto/sha256"
)

// roundTripKey derives the key multi round-trip request states are sealed
// with from the MCP token: stable across restarts (an input() prompt is
// answered after one), changed when the token is rotated (states minted
// before are then refused, and the refusal says to call again).
func roundTripKey(token string) []byte {
	mac := hmac.New(sha256.New, []byte(token))
	mac.Write([]byte("mcp-jupyter request state v1"))
	return mac.Sum(nil)
}
