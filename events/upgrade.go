package events

// upgrades holds the upcasters: for a type, a function per older version that
// rewrites a payload of that version into the next one. decodePayload chains
// them, so a v1 record read by a binary that writes v3 goes v1->v2->v3.
//
// Every type is at v1 today. NB: when a breaking payload change bumps a
// version in registry.go, add its upcaster here and a golden sample of the old
// version in testdata/, never edit the old sample.
var upgrades = map[string]map[uint16]func([]byte) ([]byte, error){}
