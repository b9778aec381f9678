package auth

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"
)

// PrincipalsFile is the name, in the data dir, of the file that holds the
// principals: beside mcp-token and the checkpoint keys, which kernels
// cannot read (infra/sandbox hides the data dir).
const PrincipalsFile = "principals.json"

// principalsFileVersion is the format written; a newer one is refused.
const principalsFileVersion = 1

// maxPrincipalsFile bounds what ParsePrincipalsFile reads: ~300 bytes per
// principal, so this is room for tens of thousands.
const maxPrincipalsFile = 16 << 20

// Record is one principal in the principals file: never its token, only
// the token's hash.
type Record struct {
	Name       string
	Scopes     Scope
	MaxKernels int
	Hash       TokenHash
	Created    time.Time
	Rotated    time.Time // zero: never rotated
	Revoked    time.Time // zero: active
}

// Active reports whether r's token authenticates.
func (r Record) Active() bool { return r.Revoked.IsZero() }

// Principal is who r's token authenticates as.
func (r Record) Principal() Principal {
	return Principal{Name: r.Name, Scopes: r.Scopes, MaxKernels: r.MaxKernels}
}

// fileJSON and recordJSON are the file's JSON form. NB: stored; field
// names must not change.
type fileJSON struct {
	Version    int          `json:"version"`
	Principals []recordJSON `json:"principals"`
}

type recordJSON struct {
	Name        string     `json:"name"`
	TokenSHA256 string     `json:"token_sha256"`
	Scopes      string     `json:"scopes"`
	MaxKernels  int        `json:"max_kernels,omitempty"`
	Created     time.Time  `json:"created"`
	Rotated     *time.Time `json:"rotated,omitempty"`
	Revoked     *time.Time `json:"revoked,omitempty"`
}

// ParsePrincipalsFile reads the principals file's bytes. Every fault is an
// error naming the principal and the field, so that a hand-edited file
// that went wrong says where; empty input is an empty table.
func ParsePrincipalsFile(data []byte) ([]Record, error) {
	if len(data) > maxPrincipalsFile {
		return nil, fmt.Errorf("the principals file has %d bytes, more than the %d it may have", len(data), maxPrincipalsFile)
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var f fileJSON
	if err := dec.Decode(&f); err != nil {
		return nil, fmt.Errorf("the principals file is not valid JSON: %w", err)
	}
	if dec.More() {
		return nil, errors.New("the principals file has data after its JSON object")
	}
	if f.Version != principalsFileVersion {
		return nil, fmt.Errorf("the principals file has version %d; this server reads version %d (written by a newer mcp-jupyter?)", f.Version, principalsFileVersion)
	}
	out := make([]Record, 0, len(f.Principals))
	names := make(map[string]bool, len(f.Principals))
	hashes := make(map[TokenHash]string, len(f.Principals))
	for i, p := range f.Principals {
		where := fmt.Sprintf("principal %d (%q)", i+1, p.Name)
		if err := checkNameChars(p.Name); err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if p.Name == AdminName || strings.HasPrefix(p.Name, "oidc:") {
			return nil, fmt.Errorf("%s: the name is reserved", where)
		}
		if names[p.Name] {
			return nil, fmt.Errorf("%s: the name appears twice", where)
		}
		names[p.Name] = true
		h, err := parseTokenHash(p.TokenSHA256)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if other, dup := hashes[h]; dup {
			return nil, fmt.Errorf("%s: same token hash as %q", where, other)
		}
		hashes[h] = p.Name
		sc, err := ParseScopes(p.Scopes, false)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", where, err)
		}
		if p.MaxKernels < 0 {
			return nil, fmt.Errorf("%s: max_kernels is %d, want 0 (the server's setting) or more", where, p.MaxKernels)
		}
		r := Record{Name: p.Name, Scopes: sc, MaxKernels: p.MaxKernels, Hash: h, Created: p.Created}
		if p.Rotated != nil {
			r.Rotated = *p.Rotated
		}
		if p.Revoked != nil {
			r.Revoked = *p.Revoked
		}
		out = append(out, r)
	}
	return out, nil
}

// encodePrincipalsFile renders records as the file holds them, sorted by
// name so that the file diffs well.
func encodePrincipalsFile(records []Record) ([]byte, error) {
	sorted := slices.Clone(records)
	slices.SortFunc(sorted, func(a, b Record) int { return strings.Compare(a.Name, b.Name) })
	f := fileJSON{Version: principalsFileVersion, Principals: make([]recordJSON, 0, len(sorted))}
	for _, r := range sorted {
		j := recordJSON{Name: r.Name, TokenSHA256: r.Hash.String(), Scopes: r.Scopes.String(), MaxKernels: r.MaxKernels, Created: r.Created.UTC()}
		if !r.Rotated.IsZero() {
			t := r.Rotated.UTC()
			j.Rotated = &t
		}
		if !r.Revoked.IsZero() {
			t := r.Revoked.UTC()
			j.Revoked = &t
		}
		f.Principals = append(f.Principals, j)
	}
	out, err := json.MarshalIndent(f, "", "  ")
	if err != nil {
		return nil, fmt.Errorf("encode the principals file: %w", err)
	}
	return append(out, '\n'), nil
}
